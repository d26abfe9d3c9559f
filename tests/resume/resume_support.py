"""Shared helpers of the resume tests: the agent tests' scripted OpenAI server and fake fal
tools, and a copy of a transcript taken at one instant (what a `kill -9` would leave)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

AGENT_TESTS = Path(__file__).resolve().parents[1] / "agent"
if str(AGENT_TESTS) not in sys.path:
    sys.path.insert(0, str(AGENT_TESTS))

from agent_fakes import FakeFal, build_fake_tools  # noqa: E402 - after the sys.path line above
from scripted_openai import ScriptedOpenAI, call, calls, text  # noqa: E402 - as above

__all__ = ["FakeFal", "ScriptedOpenAI", "build_fake_tools", "call", "calls", "snapshot", "text"]


def snapshot(source: Path, target: Path) -> Path:
    """A consistent copy of the SQLite database at `source`, as of now (committed rows only)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target
