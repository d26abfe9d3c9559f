"""The MCP server's transcript: rows prepared during a call, committed just after its reply
(agent/mcp/record.py), and none lost when the server is stopped (stdin closed, SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import WAIT_S, child_env, transcript_events, transcript_sessions

from agent.core.turnlog import TurnLog
from agent.mcp.record import DeferredTranscript
from agent.transcript.store import TranscriptError, TranscriptStore

WHO = {"user": "u", "persona": "p"}
pytestmark = pytest.mark.timeout(120)


def _count(path: Path) -> int:
    with TranscriptStore(path, secrets=()) as reader:
        return sum(s["events"] for s in reader.list_sessions(100))


def _until(check, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def test_a_spending_call_and_its_approval_commit_before_the_call_goes_on(tmp_path):
    """Only read-only calls are deferred: a submit's approval and call rows are committed
    before `settle` returns, so a kill -9 right after cannot lose what was charged."""
    path = tmp_path / "t.db"
    store = TranscriptStore(path, secrets=())
    deferred = DeferredTranscript(store, delay_s=30.0)  # a read would wait 30 s
    sid = deferred.new_session("u", "p", source="mcp")
    log = TurnLog(deferred, sid, "u", "p")
    log.start()
    log.record("approval", {"name": "submit_queue_request", "decision": "approve"})
    log.record("tool_call", {"name": "submit_queue_request", "args": {}})
    assert log.settle() is None
    assert deferred.pending() == 0 and _count(path) == 2
    log.start()
    log.record("tool_call", {"name": "search_models"})
    assert log.settle() is None
    assert deferred.pending() == 1 and _count(path) == 2  # the read waits for its batch
    deferred.close()
    store.close()


async def test_rows_commit_after_the_call_returns_and_a_burst_shares_a_batch(tmp_path):
    path = tmp_path / "t.db"
    store = TranscriptStore(path, secrets=())
    # A long delay makes "not yet committed" certain to be seen; flush ends the wait.
    deferred = DeferredTranscript(store, delay_s=30.0)
    sid = deferred.new_session("u", "p", source="mcp")
    for n in range(5):  # five calls, as the bridge makes them: a TurnLog each, settled at the end
        log = TurnLog(deferred, sid, "u", "p")
        log.start()
        log.record("tool_call", {"name": "search_models", "n": n})
        log.record("tool_result", {"name": "search_models", "n": n, "api_key": "hidden"})
        assert log.settle() is None
    assert deferred.pending() == 10 and _count(path) == 0  # replied, not committed yet
    assert await asyncio.to_thread(deferred.flush, 10.0)
    assert deferred.pending() == 0 and _count(path) == 10
    rows = [e["data"] for e in store.events(sid)]
    assert [r["n"] for r in rows] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert rows[1]["api_key"] == "[REDACTED]"  # prepared (redacted) as a chat's rows are
    deferred.close()
    store.close()


async def test_the_timer_commits_within_its_delay_without_a_flush(tmp_path):
    path = tmp_path / "t.db"
    store = TranscriptStore(path, secrets=())
    deferred = DeferredTranscript(store, delay_s=0.02)
    sid = deferred.new_session("u", "p", source="mcp")
    deferred.record(sid, "tool_call", {"name": "x"}, **WHO)
    deadline = time.monotonic() + WAIT_S
    while _count(path) < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # the loop runs: its timer hands the batch over
    assert _count(path) == 1
    deferred.close()
    store.close()


def test_close_commits_what_waits_and_later_writes_commit_at_once(tmp_path):
    path = tmp_path / "t.db"
    store = TranscriptStore(path, secrets=())
    deferred = DeferredTranscript(store, delay_s=30.0)
    sid = deferred.new_session("u", "p", source="mcp")
    # Off any loop, rows are handed over at once (no timer to wait for).
    deferred.record(sid, "tool_call", {"name": "x"}, **WHO)
    assert _until(lambda: _count(path) == 1)
    deferred.close()
    deferred.close()  # idempotent
    deferred.record(sid, "tool_result", {"name": "x"}, **WHO)
    assert _count(path) == 2
    store.close()


class FailingStore:
    """A store whose commits fail (a full disk)."""

    enabled = True

    def __init__(self) -> None:
        self.tried = threading.Event()

    def new_session(self, user: str, persona: str, source: str = "tui") -> str:
        return "s1"

    def prepare(self, session_id, kind, data, **_):
        return (session_id, 0.0, kind, "u", "p", None, None, json.dumps(data))

    def write(self, rows):
        self.tried.set()
        raise TranscriptError("disk full")


def test_a_failed_commit_is_counted_and_logged_never_raised(caplog):
    store = FailingStore()
    deferred = DeferredTranscript(store, delay_s=0.0)
    with caplog.at_level(logging.WARNING, logger="agent.mcp.record"):
        deferred.record("s1", "tool_call", {"name": "x"}, **WHO)
        assert store.tried.wait(WAIT_S)
        deferred.close()
    assert deferred.failures == 1
    assert any("could not be committed" in r.getMessage() for r in caplog.records)


def _rpc(proc: subprocess.Popen, message: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen, request_id: int) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:  # bounded by the test's timeout
        message = json.loads(line)
        if message.get("id") == request_id:
            return message
    raise AssertionError("the server closed stdout without answering")


@pytest.mark.parametrize("stop", ["sigterm", "stdin"])
def test_every_call_is_in_the_transcript_after_the_server_is_stopped(home, stop):
    """Stopped right after its reply (SIGTERM, as a client that gives up sends, or stdin
    closed), the server commits the call's rows before it exits, and no empty session."""
    errors = (home.parent / "mcp-server-stderr.log").open("w", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "mcp", "--persona", "analyst"],
                            env=child_env(home), cwd=str(Path(__file__).resolve().parents[2]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw-client", "version": "1"}}})
        assert "result" in _answer(proc, 1)
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        for n in (2, 3):
            _rpc(proc, {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": {"name": "search_models", "arguments": {"query": "flux", "limit": 2}}})
            assert _answer(proc, n)["result"]["isError"] is False
        if stop == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            assert proc.stdin is not None
            proc.stdin.close()
        assert proc.wait(WAIT_S) == (0 if stop == "stdin" else -signal.SIGTERM)
    except AssertionError:
        errors.flush()
        raise AssertionError("the server's stderr: " + (home.parent / "mcp-server-stderr.log").read_text()) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        errors.close()
    [(session, events)] = transcript_events(home, "mcp")
    assert session["user"] == "raw-client"
    assert [e["kind"] for e in events] == ["tool_call", "tool_result"] * 2
    assert [s["events"] for s in transcript_sessions(home, "mcp")] == [4]
