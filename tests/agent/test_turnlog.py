"""Grouped transcript commits in a turn: nothing is shown before the rows it records are committed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
from scripted_openai import ScriptedOpenAI, call, calls, text

import agent.core.turnlog as turnlog
from agent.core.events import ApprovalRequest, ErrorEvent, Token, ToolEnd, ToolStart, TurnEnd
from agent.core.runner import AgentRunner
from agent.core.turnlog import TurnLog
from agent.settings import Settings
from agent.transcript.store import TranscriptStore

EP = "fal-ai/flux/dev"
SCRIPT = [
    calls(call("search_models", {"query": "flux"})),
    calls(call("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 2}})),
    calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a heron"}})),
    text("Submitted your heron."),
]


@pytest.fixture
def server(monkeypatch):
    srv = ScriptedOpenAI(SCRIPT).start()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    yield srv
    srv.stop()


def committed(path, kind: str | None = None) -> list[dict]:
    """The rows another connection (so another process, or a restart) would find."""
    db = sqlite3.connect(path)
    try:
        sql, params = "SELECT kind, data FROM events ORDER BY id", ()
        if kind is not None:
            sql, params = "SELECT kind, data FROM events WHERE kind = ? ORDER BY id", (kind,)
        return [{**json.loads(d), "row": k} for k, d in db.execute(sql, params)]
    except sqlite3.OperationalError:  # no schema yet: nothing committed
        return []
    finally:
        db.close()


async def test_every_shown_event_is_committed_before_it_is_yielded(server, personas, fake_tools,
                                                                   transcript, approve, monkeypatch):
    monkeypatch.setattr(turnlog, "COMMIT_DELAY_S", 3600.0)  # only the runner's barrier commits
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, transcript=transcript, user="t")
    path = transcript.path
    seen = []
    async for event in runner.run_turn("a heron please", approve):
        seen.append(type(event).__name__)
        if isinstance(event, ToolStart):
            assert [r["call_id"] for r in committed(path, "tool_call")][-1] == event.call_id
        elif isinstance(event, ToolEnd):
            assert [r["call_id"] for r in committed(path, "tool_result")][-1] == event.call_id
        elif isinstance(event, ApprovalRequest):
            calls_asked = committed(path, "model_response")[-1]["tool_calls"]
            assert calls_asked[0]["id"] == event.call_id
        elif isinstance(event, TurnEnd):
            assert committed(path, "answer")[-1]["text"] == event.answer == "Submitted your heron."
    assert seen.count("ToolStart") == 3 and "ApprovalRequest" in seen and "Token" in seen
    kinds = [r["row"] for r in committed(path)]
    assert kinds.count("model_request") == 4 and kinds.count("approval") == 1


async def test_a_row_no_event_follows_is_committed_by_the_timer(tmp_path):
    store = TranscriptStore(tmp_path / "t.sqlite3")
    log = TurnLog(store, store.new_session("u", "p"), "u", "p")
    log.start()
    log.record("model_request", {"model": "m", "messages": []})
    log.record("user_prompt", {"text": "grouped"})
    assert committed(store.path) == []  # waiting to share one commit
    deadline = time.monotonic() + 10
    while len(committed(store.path)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert [r["row"] for r in committed(store.path)] == ["model_request", "user_prompt"]
    store.close()


def test_outside_an_event_loop_a_row_is_committed_at_once(tmp_path):
    store = TranscriptStore(tmp_path / "t.sqlite3")
    log = TurnLog(store, "s", "u", "p")
    log.record("answer", {"text": "now"})
    assert committed(store.path) == [{"row": "answer", "text": "now"}]
    store.close()


async def test_a_broken_transcript_is_reported_once_and_the_turn_goes_on(monkeypatch, tmp_path,
                                                                         personas, fake_tools):
    srv = ScriptedOpenAI([text("still here")]).start()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    try:
        bad = tmp_path / "t.sqlite3"
        bad.write_bytes(b"not a database at all" * 100)
        runner = AgentRunner(Settings(), personas["analyst"], fake_tools,
                             transcript=TranscriptStore(bad), user="t")
        events = [e async for e in runner.run_turn("hello", None)]
    finally:
        srv.stop()
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and errors[0].kind == "transcript"
    assert "transcript write failed" in errors[0].message
    assert "".join(e.text for e in events if isinstance(e, Token)) == "still here"
    assert isinstance(events[-1], TurnEnd) and events[-1].answer == "still here"


async def test_a_row_from_a_worker_thread_is_committed_at_once(tmp_path):
    store = TranscriptStore(tmp_path / "t.sqlite3")
    log = TurnLog(store, "s", "u", "p")
    log.start()
    await asyncio.to_thread(log.record, "tool_progress", {"status": "IN_QUEUE"})
    assert committed(store.path) == [{"row": "tool_progress", "status": "IN_QUEUE"}]
    store.close()
