"""Drives the installed `fal-persona` binary in tmux: sandbox + offline planner, no keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "fal-persona"

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not installed (pip install -e .)"),
]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait_screen(session: str, needle: str, timeout: float = 30.0) -> str:
    """Poll capture-pane until `needle` shows up (bounded)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", session)
        if needle in screen:
            return screen
        time.sleep(0.2)
    pytest.fail(f"{needle!r} never appeared; last screen:\n{screen}")


def _send(session: str, text: str) -> None:
    _tmux("send-keys", "-t", session, "-l", text)
    _tmux("send-keys", "-t", session, "Enter")


def test_real_binary_in_tmux(tmp_path):
    home = tmp_path / "home"
    session = f"fp-{uuid.uuid4().hex[:8]}"
    env_cmd = (f"env -u FAL_KEY -u OPENAI_API_KEY -u OPENAI_BASE_URL -u TMUX FAL_PERSONA_HOME={home} "
               f"TERM=xterm-256color {BIN}")
    subprocess.run(["tmux", "new-session", "-d", "-x", "120", "-y", "40", "-s", session, env_cmd],
                   check=True, cwd=tmp_path, env={**os.environ, "FAL_PERSONA_HOME": str(home)})
    try:
        _wait_screen(session, "Welcome to fal-persona")
        _wait_screen(session, "sandbox (no FAL_KEY)")
        _send(session, "search text-to-image")
        _wait_screen(session, "fal-ai/flux/dev")
        _send(session, "estimate 10 fal-ai/flux/dev")
        _wait_screen(session, "0.25 USD")
        _send(session, 'submit fal-ai/flux/dev prompt "a cat"')
        _wait_screen(session, "Approve: submit_queue_request")
        _tmux("send-keys", "-t", session, "Enter")  # the Approve button has focus
        _wait_screen(session, "approved: submit_queue_request")
        _wait_screen(session, "Submitted to fal-ai/flux/dev")
        _send(session, "watch then result")
        screen = _wait_screen(session, "✓ 1 image", timeout=60)
        assert "COMPLETED" in screen
        _send(session, "/export md")
        screen = _wait_screen(session, "transcript exported to")
        exports = list((home / "exports").glob("transcript-*.md"))
        assert len(exports) == 1 and "a cat" in exports[0].read_text()
        assert "Traceback" not in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
