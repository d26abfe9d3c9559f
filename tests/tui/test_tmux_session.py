"""A session as a person has it: the installed binary in tmux, many jobs in a row, no `watch`.

Ten chained generations (estimate, submit, approve; the job then moves, completes, previews
and gets its webhook by itself), a cancel that lands and one that comes too late, Esc in the
middle of a turn, a persona switch, a resize to 80x24 and back, and bad input. At the end the
app is alive, and every job has the state the sandbox reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "fal-persona"
FAST = "fal-ai/flux/schnell"
SLOW = "fal-ai/hidream-i1-full"  # 12 sandbox seconds: time to cancel it while it runs

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not installed (pip install -e .)"),
    pytest.mark.timeout(300),
]


class Tmux:
    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.name = f"fps-{uuid.uuid4().hex[:8]}"
        cmd = (f"env -u FAL_KEY -u OPENAI_API_KEY -u OPENAI_BASE_URL -u TMUX FAL_PERSONA_HOME={home} "
               f"TERM=xterm-256color {BIN}; echo APP-EXITED-$?; sleep 600")
        subprocess.run(["tmux", "new-session", "-d", "-x", "160", "-y", "48", "-s", self.name, cmd],
                       check=True, cwd=cwd, env={**os.environ, "FAL_PERSONA_HOME": str(home)})

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait(self, needle: str, timeout: float = 30.0, absent: str | None = None) -> str:
        """Poll the screen until `needle` shows (and `absent` does not), bounded."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            assert "APP-EXITED" not in screen and "Traceback" not in screen, screen
            if needle in screen and (absent is None or absent not in screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"{needle!r} never appeared; last screen:\n{screen}")

    def wait_panel(self, needle: str, timeout: float = 30.0) -> str:
        """Poll until the jobs panel (not the chat) shows `needle`."""
        deadline = time.monotonic() + timeout
        panel = ""
        while time.monotonic() < deadline:
            panel = jobs_panel(self.screen())
            if needle in panel:
                return panel
            time.sleep(0.1)
        pytest.fail(f"{needle!r} never appeared in the jobs panel:\n{panel}")

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.name, "-l", text)
        self.run("send-keys", "-t", self.name, "Enter")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def resize(self, width: int, height: int) -> None:
        self.run("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def webhooks(home: Path) -> dict[str, dict]:
    """The listener's inbox, read by the CLI while the app runs."""
    out = subprocess.run([str(BIN), "webhooks", "list", "--json"], capture_output=True, text=True,
                         env={**os.environ, "FAL_PERSONA_HOME": str(home)}, timeout=60, check=True)
    return {e["request_id"]: e for e in json.loads(out.stdout or "[]")}


def wait_webhooks(home: Path, count: int, timeout: float = 60.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    seen: dict[str, dict] = {}
    while time.monotonic() < deadline:
        seen = webhooks(home)
        if len(seen) >= count:
            return seen
        time.sleep(0.3)
    pytest.fail(f"{len(seen)} webhooks arrived, {count} expected")


def jobs_panel(screen: str) -> str:
    """The jobs panel's column: what follows its border on each line."""
    return "\n".join(line.rsplit("▏", 1)[1] for line in screen.splitlines() if "▏" in line)


def approve(tmux: Tmux) -> None:
    tmux.wait("Approve: submit_queue_request")
    tmux.keys("Enter")  # the Approve button has focus
    tmux.wait("Type a request", absent="Approve: submit_queue_request")


def test_ten_minutes_of_real_use(tmp_path):
    home = tmp_path / "home"
    tmux = Tmux(home, tmp_path)
    try:
        tmux.wait("sandbox (no FAL_KEY)")
        # Ten generations in a row; nobody types `watch`.
        for i in range(10):
            tmux.type(f'estimate 1 {FAST} then submit {FAST} prompt "fox number {i}"')
            approve(tmux)
            wait_webhooks(home, i + 1)
        events = wait_webhooks(home, 10)
        assert all(e["status"] == "OK" for e in events.values())
        panel = jobs_panel(tmux.wait("✓ 1 image"))
        assert panel.count("COMPLETED") >= 3, panel  # as many rows as fit, all done
        assert "IN_QUEUE" not in panel and "IN_PROGRESS" not in panel, panel

        # Bad input: not understood, a bad id; the app answers and stays.
        tmux.type("make me a sandwich please")
        tmux.wait("/help")
        tmux.type(f"status {FAST} 00000000-0000-0000-0000-000000000000")
        tmux.wait("not found")

        # A cancel that lands: a slow job cancelled while it runs.
        tmux.type(f'estimate 1 {SLOW} then submit {SLOW} prompt "slow one"')
        approve(tmux)
        tmux.wait_panel(SLOW[:20])  # its row is there (and on top): the latest request
        tmux.type("/cancel")
        tmux.wait("Approve: cancel_queue_request")
        tmux.keys("Enter")
        panel = tmux.wait_panel("CANCELLED", timeout=40)
        assert "100%" not in panel.split("CANCELLED")[1].split("\n\n")[0]

        # Esc in the middle of a turn that watches a slow job: the turn stops, the job does not.
        tmux.type(f'estimate 1 {SLOW} then submit {SLOW} prompt "keep going" then watch it')
        approve(tmux)
        tmux.wait("stream_queue_status(endpoint_id")  # the watch step's card: the job is submitted
        tmux.keys("Escape")
        tmux.wait("still working on 1 job")
        events = wait_webhooks(home, 12, timeout=60)  # the job goes on and completes by itself
        assert sum(e["status"] == "OK" for e in events.values()) == 11

        # Persona switch and back: the analyst may not submit; spend and latest request carry over.
        tmux.type("/persona analyst")
        tmux.wait("persona: analyst")
        tmux.type(f'submit {FAST} prompt "not allowed"')
        tmux.wait("may not use submit_queue_request")
        tmux.type("/persona producer")
        tmux.wait("persona: producer")

        # Small terminal and back.
        tmux.resize(80, 24)
        small = tmux.wait("Quit")
        assert "spent" in small.splitlines()[0]
        tmux.resize(160, 48)
        tmux.wait("Quit")
        tmux.type("help")
        tmux.wait("<endpoint>")
        screen = tmux.screen()
        assert "APP-EXITED" not in screen and "Traceback" not in screen
        assert "Type a request" in screen
    finally:
        tmux.kill()
