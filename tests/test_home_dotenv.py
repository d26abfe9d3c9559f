"""FAL_PERSONA_HOME written in `.env` (not exported) is the data dir of every command: `ask`,
`logs`, `webhooks serve` and `list` (and the checker process it starts), and the TUI."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from agent import locations
from agent.settings import Settings, from_args, with_flags
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread as start_sandbox

BIN = Path(sys.executable).parent / "fal-persona"
pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not installed (pip install -e .)")


@pytest.fixture
def project(tmp_path):
    """A working dir whose `.env` names the data dir; the environment names none."""
    work, home = tmp_path / "work", tmp_path / "dotenv-home"
    work.mkdir()
    (work / ".env").write_text(f"# the data dir lives beside the project\nFAL_PERSONA_HOME={home}\n")
    env = {k: v for k, v in os.environ.items() if k != "FAL_PERSONA_HOME"}
    return work, home, env


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def prompts_in(db: Path) -> list[str]:
    assert db.is_file(), f"no transcript at {db}"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT data FROM events WHERE kind = 'user_prompt' ORDER BY id").fetchall()
    return [json.loads(data)["text"] for (data,) in rows]


def test_home_reads_dotenv_when_nothing_is_exported(tmp_path, monkeypatch):
    monkeypatch.delenv("FAL_PERSONA_HOME")
    (tmp_path / ".env").write_text("FAL_PERSONA_HOME=./data\n")
    assert locations.home() == tmp_path / "data" and (tmp_path / "data").is_dir()
    assert locations.transcript_db() == tmp_path / "data" / "transcript.sqlite3"
    # The command line fixes it for the process and its children, as an absolute path.
    assert locations.use_settings(Settings()) == tmp_path / "data"
    assert os.environ["FAL_PERSONA_HOME"] == str(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "data")  # a later chdir does not move it
    assert locations.home() == tmp_path / "data"


def test_one_flag_merge_for_every_command():
    import argparse

    base = Settings()
    merged = with_flags(base, user="ann", no_log=True, listen=False, log_level="debug")
    assert (merged.user, merged.no_log, merged.listen, merged.log_level) == ("ann", True, False, "DEBUG")
    assert with_flags(base) is base  # flags left at their defaults change nothing
    assert with_flags(base, listen=None, no_log=False).listen is None
    args = argparse.Namespace(user="bo", no_log=False, listen=True, log_level=None)
    assert (from_args(args).user, from_args(args).listen) == ("bo", True)
    args.settings = merged  # what agent.cli.main resolved is what handlers get
    assert from_args(args) is merged


def test_ask_and_logs_use_the_dotenv_home(project, tmp_path):
    work, home, env = project
    done = run(["ask", "search flux"], work, env)
    assert done.returncode == 0, done.stderr
    assert "fal-ai/flux/dev" in done.stdout
    assert prompts_in(home / "transcript.sqlite3") == ["search flux"]
    assert (home / "logs" / "fal-persona.log").is_file()
    assert not (tmp_path / "home" / "transcript.sqlite3").exists()  # the test's own default home
    with sqlite3.connect(home / "transcript.sqlite3") as conn:
        (session,) = conn.execute("SELECT id FROM sessions").fetchone()
    listed = run(["logs", "list"], work, env)
    assert listed.returncode == 0 and session in listed.stdout, listed
    shown = run(["logs", "export", "--format", "jsonl"], work, env)
    assert shown.returncode == 0 and '"search flux"' in shown.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # No .env there: the platform's data dir, kept inside the test's temp dir.
    other = run(["logs", "export", "--format", "jsonl"], elsewhere, {**env, "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert (tmp_path / "xdg" / "fal-persona").is_dir()
    assert '"search flux"' not in other.stdout


def test_webhooks_serve_and_list_use_the_dotenv_home(project):
    work, home, env = project
    with start_sandbox(config=SandboxConfig(manual_clock=True)) as sandbox:
        env = {**env, "FAL_QUEUE_BASE_URL": sandbox.url, "FAL_API_BASE_URL": f"{sandbox.url}/v1",
               "FAL_JWKS_URL": f"{sandbox.url}/.well-known/jwks.json", "FAL_KEY": "sandbox-key:sandbox-secret"}
        proc = subprocess.Popen([str(BIN), "webhooks", "serve", "--host", "127.0.0.1", "--port", "0"], cwd=work,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            for line in proc.stdout:  # type: ignore[union-attr]  # stdout=PIPE
                lines.append(line.strip())
                if line.startswith("Rules:"):
                    break
            hook = next(line.split()[-1] for line in lines if line.startswith("Webhook URL to give fal: "))
            submitted = httpx.post(f"{sandbox.url}/fal-ai/flux/schnell", json={"prompt": "a fox"},
                                   headers={"Authorization": "Key sandbox-key:sandbox-secret"},
                                   params={"fal_webhook": hook})
            request_id = submitted.json()["request_id"]
            deadline, rows = time.monotonic() + 60, []
            while request_id not in [r["request_id"] for r in rows]:
                assert time.monotonic() < deadline, f"never stored: {rows}"
                sandbox.advance(5)  # returns once the delivery attempts it set off have finished
                listed = run(["webhooks", "list", "--json"], work, env, timeout=60)
                assert listed.returncode == 0, listed.stderr
                rows = json.loads(listed.stdout)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    with sqlite3.connect(home / "inbox.sqlite3") as conn:  # stored by the checker process, there
        assert conn.execute("SELECT count(*) FROM events WHERE request_id = ?", (request_id,)).fetchone()[0] == 1
    assert "fal-persona webhooks serve started" in (home / "logs" / "fal-persona.log").read_text()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_tui_uses_the_dotenv_home(project):
    work, home, env = project
    session = f"fp-home-{uuid.uuid4().hex[:8]}"
    command = f"env -u FAL_PERSONA_HOME -u FAL_KEY -u OPENAI_API_KEY -u TMUX TERM=xterm-256color {BIN}"
    subprocess.run(["tmux", "new-session", "-d", "-x", "120", "-y", "40", "-s", session, "-c", str(work),
                    command], check=True, cwd=work, env=env)
    try:
        deadline = time.monotonic() + 60
        screen, sent = "", False
        while "No more pages" not in screen:  # the end of the search answer
            assert time.monotonic() < deadline, f"no search answer; last screen:\n{screen}"
            if "nothing is billed" in screen and not sent:  # the runtime is up
                subprocess.run(["tmux", "send-keys", "-t", session, "-l", "search flux"], check=True)
                subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
                sent = True
            time.sleep(0.2)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
        assert prompts_in(home / "transcript.sqlite3") == ["search flux"]
        assert (home / "history.txt").read_text().strip() == "search flux"
        assert (home / "logs" / "fal-persona.log").is_file()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_variables_named_like_fields_are_not_settings(tmp_path, monkeypatch):
    """HOME is not the data dir, USER not the transcript's user, KEY not the fal key."""
    from tools.fal.config import FalConfig

    monkeypatch.delenv("FAL_PERSONA_HOME")
    for name, value in {"HOME": str(tmp_path / "h"), "USER": "zed", "PERSONA": "ops", "KEY": "abc:defgh",
                        "QUEUE_BASE_URL": "http://127.0.0.1:9", "CHECK": "thread", "LISTEN": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = Settings()
    assert (settings.home, settings.user, settings.persona, settings.listen) == (None, None, "producer", None)
    assert settings.webhooks.check == "auto" and settings.fal.key is None
    assert FalConfig().queue_base_url == "https://queue.fal.run"
    assert locations.home() == tmp_path / "xdg" / "fal-persona"
    assert Settings(listen=True, no_log=True).listen is True  # keyword arguments by name still work
