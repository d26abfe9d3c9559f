"""A persona switch takes the MCP servers with it: the new persona's start (their tools in its
scope), the old persona's stop (their processes end, their tools leave the runner); switching
to the persona whose servers run keeps them; a resumed chat gets its persona's servers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import WAIT_S, scribe_persona

pytestmark = pytest.mark.timeout(180)


def _runtime(persona: str):
    from agent.core.runtime import build_runtime
    from agent.settings import Settings

    return build_runtime(Settings().model_copy(update={"listen": False}), persona, source="cli")


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] == "Z"


async def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not _gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return _gone(pid)


def _names(runtime) -> set[str]:
    return {t.name for t in runtime.runner.tools}


async def test_switching_starts_and_stops_each_personas_servers(home, tmp_path):
    pid_file = tmp_path / "pid"
    scribe_persona(home, tmp_path / "notes.txt", pid_file=pid_file)
    runtime = await asyncio.to_thread(_runtime, "analyst")
    try:
        assert runtime.mcp is None and not any(n.startswith("notes_") for n in _names(runtime))
        spent_before = runtime.runner.spent_usd

        await asyncio.to_thread(runtime.switch_persona, "scribe")
        assert runtime.mcp is not None and runtime.mcp.status() == {"notes": "up"}
        assert {"notes_save_note", "notes_read_notes", "submit_queue_request"} <= _names(runtime)
        assert "notes_save_note" in runtime.runner.persona.approval
        first = int(pid_file.read_text())
        hub = runtime.mcp

        await asyncio.to_thread(runtime.switch_persona, "scribe")  # the same persona: kept
        assert runtime.mcp is hub and int(pid_file.read_text()) == first

        await asyncio.to_thread(runtime.switch_persona, "analyst")
        assert runtime.mcp is None and hub.status() == {"notes": "closed"}
        assert not any(n.startswith("notes_") for n in _names(runtime))
        assert not any(t.name.startswith("notes_") for t in runtime.tools)
        assert await _wait_gone(first)

        await asyncio.to_thread(runtime.switch_persona, "scribe")  # back: started afresh
        assert runtime.mcp is not None and runtime.mcp is not hub
        assert runtime.mcp.status() == {"notes": "up"} and int(pid_file.read_text()) != first
        names = [t.name for t in runtime.tools]
        assert len(names) == len(set(names))  # no tool twice after the round trip
        assert runtime.runner.persona.tools.count("notes_save_note") == 1
        assert runtime.runner.spent_usd == spent_before
    finally:
        await runtime.aclose()
    assert await _wait_gone(int(pid_file.read_text()))


async def test_a_switched_to_personas_server_runs_in_a_turn(home, tmp_path):
    notes = tmp_path / "notes.txt"
    scribe_persona(home, notes, approval="[]")
    runtime = await asyncio.to_thread(_runtime, "analyst")
    try:
        await asyncio.to_thread(runtime.switch_persona, "scribe")
        async with asyncio.timeout(WAIT_S):
            ends = [e async for e in runtime.runner.run_turn("notes_save_note text=after-switch", None)
                    if type(e).__name__ == "ToolEnd"]
    finally:
        await runtime.aclose()
    assert [e.name for e in ends] == ["notes_save_note"] and not ends[0].error
    assert notes.read_text() == "after-switch\n"


async def test_a_persona_whose_server_fails_still_switches_and_says_why(home, tmp_path):
    scribe_persona(home, tmp_path / "notes.txt", extra_servers=f'''
[[mcp_servers]]
name = "ghost"
command = "{tmp_path / 'no-such-server'}"
''')
    runtime = await asyncio.to_thread(_runtime, "analyst")
    try:
        await asyncio.to_thread(runtime.switch_persona, "scribe")
        assert runtime.mcp.status() == {"notes": "up", "ghost": "failed"}
        assert any(n.startswith("MCP server ghost did not start") for n in runtime.mcp.notices)
        assert runtime.runner.persona.name == "scribe" and "notes_save_note" in _names(runtime)
    finally:
        await runtime.aclose()


async def test_resuming_a_chat_of_another_persona_starts_its_servers(home, tmp_path):
    scribe_persona(home, tmp_path / "notes.txt", approval="[]")
    first = await asyncio.to_thread(_runtime, "scribe")
    try:
        async with asyncio.timeout(WAIT_S):
            [e async for e in first.runner.run_turn("notes_save_note text=one", None)]
        session = first.runner.session_id
    finally:
        await first.aclose()
    runtime = await asyncio.to_thread(_runtime, "analyst")
    try:
        await asyncio.to_thread(runtime.resume_session, session)
        assert runtime.runner.persona.name == "scribe"
        assert runtime.mcp is not None and runtime.mcp.status() == {"notes": "up"}
        assert "notes_read_notes" in _names(runtime)
    finally:
        await runtime.aclose()
