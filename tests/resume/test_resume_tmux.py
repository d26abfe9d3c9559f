"""`kill -9` mid-session, then `fal-persona --continue`: the installed binary in tmux, with a
scripted OpenAI-compatible model server (it records every request) and the built-in sandbox.

The first app generates a red fox (approved; the job completes, its preview shows), then is
asked for a blue one and is killed while the approval modal is open. The second app, started
with `--continue`, shows the same messages, the finished job and its preview (from the media
cache: the sandbox that served it died with the first app), and asks the approval again. The
yes runs the submit, and the model requests that follow carry the earlier conversation.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from resume_support import ScriptedOpenAI, call, calls, text

BIN = Path(sys.executable).parent / "fal-persona"
FAST = "fal-ai/flux/schnell"

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not installed (pip install -e .)"),
    pytest.mark.timeout(240),
]


class App:
    """One fal-persona process in its own tmux session; its pid is the app's own (exec)."""

    def __init__(self, home: Path, cwd: Path, model_url: str, *args: str) -> None:
        self.name = f"fpr-{uuid.uuid4().hex[:8]}"
        self.pidfile = cwd / f"{self.name}.pid"
        env = (f"env -u FAL_KEY -u TMUX -u FAL_QUEUE_BASE_URL -u FAL_API_BASE_URL FAL_PERSONA_HOME={home} "
               f"OPENAI_BASE_URL={model_url} OPENAI_API_KEY=sk-test-not-a-real-key LANGSMITH_TRACING=false "
               f"TERM=xterm-256color")
        go = cwd / f"{self.name}.go"
        # The app starts only once the window has its size (other tmux clients of this server
        # may change the default meanwhile): it waits for `go`, bounded.
        cmd = (f"for i in $(seq 200); do [ -e {go} ] && break; sleep 0.05; done; "
               f"echo $$ > {self.pidfile}; exec {env} {BIN} {' '.join(args)}")
        subprocess.run(["tmux", "new-session", "-d", "-x", "170", "-y", "100", "-s", self.name, cmd],
                       check=True, cwd=cwd)
        deadline = time.monotonic() + 10
        while True:
            subprocess.run(["tmux", "resize-window", "-t", self.name, "-x", "170", "-y", "100"], check=True)
            size = subprocess.run(["tmux", "display", "-p", "-t", self.name, "#{window_width}x#{window_height}"],
                                  capture_output=True, text=True).stdout.strip()
            if size == "170x100":
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the tmux window stayed {size}")
            time.sleep(0.05)
        go.touch()
        self.pid = self._read_pid()

    def _read_pid(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return int(self.pidfile.read_text().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        pytest.fail("the app's pid never appeared")

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def wait(self, *needles: str, timeout: float = 40.0) -> str:
        """Poll the screen until every needle shows, bounded."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            assert "Traceback" not in screen, screen
            if all(n in screen for n in needles):
                return screen
            time.sleep(0.1)
        pytest.fail(f"{[n for n in needles if n not in screen]} never appeared; last screen:\n{screen}")

    def type(self, words: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", words], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def kill9(self) -> None:
        """SIGKILL the app, and wait (bounded) until it is gone."""
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return
            if state in ("Z", "X"):  # dead, waiting for tmux to reap it
                return
            time.sleep(0.05)
        pytest.fail("the app outlived SIGKILL")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def jobs_panel(screen: str) -> str:
    return "\n".join(line.rsplit("▏", 1)[1] for line in screen.splitlines() if "▏" in line)


def wait_panel(app: App, needle: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    panel = ""
    while time.monotonic() < deadline:
        panel = jobs_panel(app.screen())
        if needle in panel:
            return panel
        time.sleep(0.1)
    pytest.fail(f"{needle!r} never appeared in the jobs panel:\n{panel}")


def submit(prompt: str, call_id: str):
    return calls(call("submit_queue_request", {"endpoint_id": FAST, "arguments": {"prompt": prompt}}, call_id))


def red_request_id(model: ScriptedOpenAI) -> str:
    """The red fox's request id, from the submit's result the model was sent."""
    import json
    import re

    tool = next(m for m in model.requests[1]["messages"] if m.get("tool_call_id") == "call_red")
    found = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", json.dumps(tool))
    assert found, tool
    return found.group(0)


def test_kill_9_then_continue_shows_the_chat_and_asks_the_approval_again(tmp_path):
    home = tmp_path / "home"
    script = [submit("a red fox", "call_red"), text("Submitted your red fox."),
              submit("a blue fox", "call_blue"), text("Blue fox submitted after your approval."),
              text("You asked for two foxes: a red one and a blue one.")]
    with ScriptedOpenAI(script) as model:
        first = App(home, tmp_path, model.url)
        try:
            first.wait("Type a request", "sandbox (no FAL_KEY)")
            first.type("make me a red fox")
            first.wait("Approve: submit_queue_request")
            first.keys("Enter")
            first.wait("Submitted your red fox.")
            wait_panel(first, "✓ 1 image")
            before = first.wait("🖼 image", "Submitted your red fox.", "make me a red fox")
            first.type("now a blue one please")
            first.wait("Approve: submit_queue_request", "a blue fox")  # the modal is open
            first.kill9()
        finally:
            first.close()
        assert len(model.requests) == 3
        red = red_request_id(model)
        assert red[:8] in jobs_panel(before) and "COMPLETED" in jobs_panel(before)

        second = App(home, tmp_path, model.url, "--continue")
        try:
            second.wait("Approve: submit_queue_request", "a blue fox")  # asked again
            assert len(model.requests) == 3  # asking again calls nobody; nothing ran on its own
            second.keys("Enter")  # the Approve button has focus: the blue fox is submitted now
            shown = second.wait("Type a request", "reopened chat")
            for seen in ("make me a red fox", "Submitted your red fox.", "now a blue one please", "🖼 image"):
                assert seen in shown, (seen, shown)
            assert "preview unavailable" not in shown, shown  # from the cache: its server is gone
            panel = jobs_panel(shown)
            assert red[:8] in panel and "COMPLETED" in panel and "✓ 1 image" in panel, panel
            second.wait("Blue fox submitted after your approval.")
            resumed = model.requests[3]
            said = [(m["role"], m.get("tool_call_id") or "", str(m.get("content") or "")) for m in resumed["messages"]]
            assert ("user", "", "make me a red fox") in said and ("user", "", "now a blue one please") in said
            assert [m[1] for m in said if m[0] == "tool"] == ["call_red", "call_blue"]
            assert "request_id" in next(m[2] for m in said if m[1] == "call_blue")  # it really ran
            second.type("what did I ask for?")
            second.wait("You asked for two foxes")
            users = [m["content"] for m in model.requests[4]["messages"] if m["role"] == "user"]
            assert users == ["make me a red fox", "now a blue one please", "what did I ask for?"]
        finally:
            second.close()
