"""Resuming at the runner: a transcript cut at the instant an approval was asked (what a
`kill -9` leaves) rebuilds a history the OpenAI API accepts, asks the approval again, and the
next model request carries the earlier context."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from resume_support import FakeFal, ScriptedOpenAI, build_fake_tools, call, calls, snapshot, text

from agent.core.events import ApprovalRequest, Decision, ToolEnd, TurnEnd
from agent.core.history import trimmed
from agent.core.runner import AgentRunner
from agent.personas import load_personas
from agent.settings import Settings
from agent.transcript.replay import NOT_FINISHED, paired, replay
from agent.transcript.store import TranscriptStore

EP = "fal-ai/flux/dev"


async def collect(agen):
    return [e async for e in agen]


class SnapshotThenReject:
    """At the first approval, copy the transcript (the app 'dies' here), then say no."""

    def __init__(self, db, copy) -> None:
        self.db, self.copy, self.requests = db, copy, []

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.requests.append(request)
        if len(self.requests) == 1:
            snapshot(self.db, self.copy)
        return Decision(action="reject", reason="the first app said no after the snapshot")


@pytest.fixture
def server(monkeypatch):
    srv = ScriptedOpenAI([
        calls(call("search_models", {"query": "flux"}, "call_search")),
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a fox"}}, "call_submit")),
        text("The first app's answer after its rejection."),
        text("Submitted your fox."),
        text("Here is what we did so far."),
    ]).start()
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    yield srv
    srv.stop()


def roles(body):
    return [(m["role"], m.get("tool_call_id") or "") for m in body["messages"]]


async def test_pending_approval_survives_and_context_carries(tmp_path, server):
    personas = load_personas()
    db, copy = tmp_path / "t.sqlite3", tmp_path / "killed.sqlite3"
    fal = FakeFal()
    tools = build_fake_tools(fal)
    settings = Settings()
    with TranscriptStore(db) as store:
        first = AgentRunner(settings, personas["producer"], tools, transcript=store, user="tester")
        approver = SnapshotThenReject(db, copy)
        await collect(first.run_turn("make me a fox with flux", approver))
        sid = first.session_id
    assert copy.exists() and not fal.submitted()

    with TranscriptStore(copy) as store:
        rebuilt = replay(sid, store.events(sid))
        assert [p.call_id for p in rebuilt.pending] == ["call_submit"]
        assert rebuilt.title == "make me a fox with flux" and rebuilt.persona == "producer"
        kinds = [type(m).__name__ for m in rebuilt.messages]
        assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]  # the submit waits
        card = [s for s in rebuilt.shown if s.kind == "tool"]
        assert [c.name for c in card] == ["search_models"] and card[0].done

        second = AgentRunner(settings, personas["producer"], tools, transcript=store, session_id=sid,
                             user="tester")
        second.restore(rebuilt)
        asked = []

        async def yes(request: ApprovalRequest) -> Decision:
            asked.append(request)
            return Decision(action="approve")

        events = await collect(second.run_pending(yes))
        assert [r.call_id for r in asked] == ["call_submit"]  # asked again, not approved silently
        assert len(fal.submitted()) == 1 and fal.submitted()[0]["arguments"] == {"prompt": "a fox"}
        assert any(isinstance(e, ToolEnd) and e.call_id == "call_submit" and not e.error for e in events)
        assert isinstance(events[-1], TurnEnd) and events[-1].answer == "Submitted your fox."
        resumed = server.requests[3]
        assert roles(resumed)[1:] == [("user", ""), ("assistant", ""), ("tool", "call_search"),
                                      ("assistant", ""), ("tool", "call_submit")]
        assert resumed["messages"][1]["content"] == "make me a fox with flux"

        await collect(second.run_turn("what did we do?", yes))
        nxt = server.requests[4]
        assert [m["role"] for m in nxt["messages"]][-2:] == ["assistant", "user"]
        assert any(m.get("tool_call_id") == "call_submit" for m in nxt["messages"])
        again = replay(sid, store.events(sid))
        assert again.pending == [] and again.turns == 2
        assert [m.type for m in again.messages].count("tool") == 2


async def test_rejecting_a_pending_approval_refuses_the_call(tmp_path, server):
    personas = load_personas()
    db, copy = tmp_path / "t.sqlite3", tmp_path / "killed.sqlite3"
    fal = FakeFal()
    tools = build_fake_tools(fal)
    with TranscriptStore(db) as store:
        first = AgentRunner(Settings(), personas["producer"], tools, transcript=store, user="tester")
        await collect(first.run_turn("make me a fox", SnapshotThenReject(db, copy)))
        sid = first.session_id
    with TranscriptStore(copy) as store:
        second = AgentRunner(Settings(), personas["producer"], tools, transcript=store, session_id=sid)
        second.restore(replay(sid, store.events(sid)))

        async def no(request: ApprovalRequest) -> Decision:
            return Decision(action="reject", reason="not now")

        events = await collect(second.run_pending(no))
        assert not fal.submitted()
        end = next(e for e in events if isinstance(e, ToolEnd) and e.call_id == "call_submit")
        assert end.error and "Rejected" in end.content
        assert replay(sid, store.events(sid)).pending == []


def test_paired_moves_results_up_drops_orphans_and_fills_gaps():
    call_a = {"name": "get_queue_status", "args": {}, "id": "a", "type": "tool_call"}
    call_b = {"name": "get_queue_status", "args": {}, "id": "b", "type": "tool_call"}
    history = [HumanMessage("hi"), AIMessage("", tool_calls=[call_a, call_b]), HumanMessage("again"),
               ToolMessage("late a", tool_call_id="a"), ToolMessage("orphan", tool_call_id="zzz"),
               AIMessage("", tool_calls=[{**call_a, "id": "c"}])]
    out = paired(history)
    shape = [(m.type, getattr(m, "tool_call_id", "")) for m in out]
    assert shape == [("human", ""), ("ai", ""), ("tool", "a"), ("tool", "b"), ("human", ""), ("ai", ""),
                     ("tool", "c")]
    assert out[2].content == "late a" and out[6].content == NOT_FINISHED
    assert paired(history, {"c"})[-1].type == "ai"  # a pending call waits for its decision


def test_trimmed_keeps_whole_turns_and_the_current_one():
    history = []
    for i in range(50):
        history += [HumanMessage(f"request {i} " + "x" * 400),
                    AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": f"c{i}", "type": "tool_call"}]),
                    ToolMessage("y" * 400, tool_call_id=f"c{i}"), AIMessage(f"answer {i}")]
    history.append(HumanMessage("the newest"))
    kept = trimmed(history, 2000)
    assert kept[-1].content == "the newest" and isinstance(kept[0], HumanMessage)
    assert 1 < len(kept) < len(history)
    ids = {m.tool_call_id for m in kept if isinstance(m, ToolMessage)}
    assert ids == {c["id"] for m in kept if isinstance(m, AIMessage) for c in m.tool_calls}
    assert trimmed(history, 0) == history
    assert trimmed([HumanMessage("z" * 100_000)], 10)[0].content.startswith("z")  # never empty
