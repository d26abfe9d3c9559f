"""Switching persona goes on in the same session: conversation, spend, transcript, new scope."""

from __future__ import annotations

from agent.core.events import ToolEnd
from agent.core.runner import AgentRunner
from agent.core.runtime import Runtime
from agent.settings import Settings

EP = "fal-ai/flux/dev"


async def _turn(runner, text, approver):
    return [e async for e in runner.run_turn(text, approver)]


async def test_switch_keeps_session_spend_and_latest_request(personas, fake_tools, transcript, approve,
                                                             monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    settings = Settings()
    runner = AgentRunner(settings, personas["producer"], fake_tools, transcript=transcript, user="t")
    rt = Runtime(settings=settings, mode="sandbox", personas=personas, runner=runner, tools=fake_tools,
                 client=None, transcript=transcript, user="t")
    await _turn(runner, f'estimate 1 {EP} then submit {EP} prompt "a heron"', approve)
    spent, session = runner.spent_usd, runner.session_id
    assert spent > 0

    analyst = rt.switch_persona("analyst")
    assert analyst is rt.runner and analyst.persona.name == "analyst"
    assert analyst.session_id == session and analyst.spent_usd == spent
    # "it" still means the producer's request, and the analyst's own scope applies.
    events = await _turn(analyst, "status", approve)
    ends = [e for e in events if isinstance(e, ToolEnd)]
    assert ends and ends[0].name == "get_queue_status" and not ends[0].error
    refused = await _turn(analyst, f'submit {EP} prompt "not mine to spend"', approve)
    assert not [e for e in refused if isinstance(e, ToolEnd) and e.name == "submit_queue_request"]
    assert "submit_queue_request" in refused[-1].answer  # the planner names the tool it lacks
    assert analyst.spent_usd == spent

    back = rt.switch_persona("producer")
    assert back.session_id == session and back.spent_usd == spent
    rows = transcript.events(session)
    switches = [r for r in rows if r["kind"] == "persona_switch"]
    assert [(s["data"]["from"], s["data"]["to"]) for s in switches] == [("producer", "analyst"),
                                                                       ("analyst", "producer")]
    exported = transcript.export(session, "jsonl")
    assert "a heron" in exported and "not mine to spend" in exported  # one export, both personas

    fresh = rt.new_session()
    assert fresh.session_id != session and fresh.spent_usd == 0
