"""The runner against a scripted OpenAI-compatible server (SSE tool calls) and fake fal tools."""

from __future__ import annotations

import asyncio
import re

import pytest
from agent_support import Approver
from scripted_openai import ScriptedOpenAI, call, calls, text

from agent.core.events import ApprovalRequest, Decision, ErrorEvent, Token, ToolEnd, ToolProgress, ToolStart, TurnEnd
from agent.core.runner import AgentRunner
from agent.settings import Settings

EP = "fal-ai/flux/dev"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def server_factory(monkeypatch):
    started = []

    def make(script, **kw):
        srv = ScriptedOpenAI(script, **kw).start()
        started.append(srv)
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        return srv

    yield make
    for srv in started:
        srv.stop()


def runner_for(persona, tools, transcript=None, **env) -> AgentRunner:
    settings = Settings(**env)
    assert not settings.uses_offline_planner
    return AgentRunner(settings, persona, tools, transcript=transcript, user="tester")


async def collect(agen):
    return [e async for e in agen]


def with_request_id(tool: str):
    """A turn that calls a queue tool on the request id found in the last tool result."""
    def turn(body):
        texts = [str(m["content"]) for m in body["messages"] if m.get("role") == "tool"]
        rid = next(UUID.search(t).group(0) for t in reversed(texts) if UUID.search(t))
        return calls(call(tool, {"endpoint_id": EP, "request_id": rid}))
    return turn


CHAIN = [
    calls(call("search_models", {"query": "flux"})),
    calls(call("get_pricing", {"endpoint_ids": [EP]})),
    calls(call("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 4}})),
    calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a fox"}})),
    with_request_id("stream_queue_status"),
    with_request_id("get_queue_result"),
    text("Your fox is ready."),
]


async def test_chained_scenario_runs_every_step_and_logs_it(server_factory, personas, fake_tools, fal,
                                                            transcript, approve):
    srv = server_factory(CHAIN)
    runner = runner_for(personas["producer"], fake_tools, transcript)
    events = await collect(runner.run_turn("make me a fox", approve))

    assert fal.names() == ["search_models", "get_pricing", "estimate_pricing", "submit_queue_request",
                           "stream_queue_status", "get_queue_result"]
    ends = [e for e in events if isinstance(e, ToolEnd)]
    assert [e.error for e in ends] == [False] * 6 and all(e.duration_s >= 0 for e in ends)
    assert [e.data["status"] for e in events if isinstance(e, ToolProgress)] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    (approval,) = [e for e in events if isinstance(e, ApprovalRequest)]
    # The estimate was for 4 images; this submit asks for one: it shows and costs one image.
    assert approval.estimate_usd == pytest.approx(0.025) and approval.budget_left_usd == pytest.approx(5.0)
    assert approval.cost_basis == "1 image × $0.025/image"
    assert isinstance(events[-1], TurnEnd) and events[-1].answer == "Your fox is ready."
    assert "".join(e.text for e in events if isinstance(e, Token)) == "Your fox is ready."
    assert runner.spent_usd == pytest.approx(0.025) and runner.budget_left_usd == pytest.approx(4.975)
    assert events[-1].usage.get("total_tokens") == 18 * 7
    # The model saw every result: the last request carries all six tool messages.
    assert len(srv.tool_messages(-1)) == 6
    # The fakes are the nine tools (no upload_file): the model is offered all of the persona's that exist.
    assert srv.requests[0]["stream"] is True and {t["function"]["name"] for t in srv.requests[0]["tools"]} == set(
        personas["producer"].tools) - {"upload_file"}

    rows = transcript.events(runner.session_id)
    kinds = [r["kind"] for r in rows]
    assert kinds.count("user_prompt") == 1 and kinds.count("answer") == 1
    assert kinds.count("model_request") == 7 and kinds.count("model_response") == 7
    assert kinds.count("tool_call") == 6 and kinds.count("tool_result") == 6
    assert kinds.count("tool_progress") == 3 and kinds.count("approval") == 1
    assert all(r["user"] == "tester" and r["persona"] == "producer" for r in rows)
    approval_row = next(r for r in rows if r["kind"] == "approval")
    assert approval_row["data"]["decision"] == "approve"
    response = next(r for r in rows if r["kind"] == "model_response")
    assert response["data"]["tool_calls"][0]["name"] == "search_models" and response["duration_s"] is not None
    assert response["data"]["usage"]["total_tokens"] == 18


async def test_rejected_approval_submits_nothing(server_factory, personas, fake_tools, fal, transcript, reject):
    srv = server_factory([
        calls(call("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 1}})),
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a fox"}})),
        text("OK, not submitted."),
    ])
    runner = runner_for(personas["producer"], fake_tools, transcript)
    events = await collect(runner.run_turn("fox please", reject))
    assert fal.submitted() == []
    assert len(reject.requests) == 1
    assert "Rejected by the user (too pricey)" in srv.tool_messages(-1)[-1]["content"]
    assert events[-1].answer == "OK, not submitted." and runner.spent_usd == 0
    row = next(r for r in transcript.events(runner.session_id) if r["kind"] == "approval")
    assert row["data"]["decision"] == "reject"


async def test_edited_approval_runs_with_new_args(server_factory, personas, fake_tools, fal):
    server_factory([
        calls(call("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 1}})),
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a fox"}})),
        text("done"),
    ])
    edit = Approver(Decision(action="edit", args={"endpoint_id": EP, "arguments": {"prompt": "a wolf"}}))
    await collect(runner_for(personas["producer"], fake_tools).run_turn("fox", edit))
    assert fal.submitted() == [{"endpoint_id": EP, "arguments": {"prompt": "a wolf"}}]


async def test_submit_without_estimate_is_priced_and_approved(server_factory, personas, fake_tools, fal, approve):
    srv = server_factory([calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "x"}})),
                          text("Submitted.")])
    runner = runner_for(personas["producer"], fake_tools)
    events = await collect(runner.run_turn("go", approve))
    # The guard looked the price up itself (get_pricing), showed it, and the submit ran.
    assert fal.names() == ["get_pricing", "submit_queue_request"]
    (request,) = approve.requests
    assert request.estimate_usd == pytest.approx(0.025) and request.unit_price_usd == pytest.approx(0.025)
    assert request.unit == "image" and request.cost_basis == "1 image × $0.025/image"
    assert "request_id" in srv.tool_messages(-1)[0]["content"]
    assert events[-1].answer == "Submitted." and runner.spent_usd == pytest.approx(0.025)


async def test_over_budget_submit_is_refused_before_approval(server_factory, personas, fake_tools, fal, approve):
    srv = server_factory([
        calls(call("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 1}})),
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "x", "num_images": 400}})),
        text("Too expensive."),
    ])
    await collect(runner_for(personas["producer"], fake_tools).run_turn("go", approve))
    assert fal.submitted() == [] and approve.requests == []
    refusal = srv.tool_messages(-1)[-1]["content"]
    assert "budget" in refusal and "$10.00" in refusal and "400 images" in refusal


BAD_OUTPUT = {
    "unknown_tool": ("producer", call("make_coffee", {"size": "large"}), "no tool named 'make_coffee'"),
    "not_json": ("producer", call("search_models", '{"query": flux'), "not run"),
    "schema": ("producer", call("get_pricing", {"endpoint_ids": "not-a-list"}), "endpoint_ids"),
    "out_of_scope": ("analyst", call("cancel_queue_request", {"endpoint_id": EP, "request_id": "r1"}),
                     "outside the scope of the analyst persona"),
}


@pytest.mark.parametrize("case", list(BAD_OUTPUT))
async def test_bad_model_output_is_fed_back_and_the_agent_goes_on(case, server_factory, personas, fake_tools,
                                                                  fal, transcript, approve):
    persona, bad, expected = BAD_OUTPUT[case]
    srv = server_factory([calls(bad), calls(call("search_models", {"query": "flux"})), text("recovered")])
    runner = runner_for(personas[persona], fake_tools, transcript)
    events = await collect(runner.run_turn("do it", approve))
    fed_back = srv.tool_messages(1)
    assert len(fed_back) == 1 and expected in fed_back[0]["content"]
    assert fal.names() == ["search_models"]  # only the good call ran; nothing was cancelled
    assert events[-1].answer == "recovered" and not any(isinstance(e, ErrorEvent) for e in events)
    assert any(r["kind"] == "tool_error" for r in transcript.events(runner.session_id))


async def test_model_call_limit_ends_an_endless_loop(server_factory, personas, fake_tools, fal, transcript):
    server_factory([calls(call("search_models", {"query": "flux"}))], repeat_last=True)
    runner = runner_for(personas["producer"], fake_tools, transcript, FAL_PERSONA_MAX_MODEL_CALLS=3)
    events = await collect(runner.run_turn("loop forever", None))
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and errors[0].kind == "limit" and "FAL_PERSONA_MAX_MODEL_CALLS" in errors[0].message
    assert isinstance(events[-1], TurnEnd) and len(fal.calls) == 3
    assert any(r["kind"] == "error" for r in transcript.events(runner.session_id))


async def test_tool_call_limit_ends_a_loop_and_the_next_turn_works(server_factory, personas, fake_tools, fal):
    srv = server_factory([calls(call("search_models", {"query": "flux"}))], repeat_last=True)
    runner = runner_for(personas["producer"], fake_tools, FAL_PERSONA_MAX_TOOL_CALLS=2)
    events = await collect(runner.run_turn("loop", None))
    assert [e.kind for e in events if isinstance(e, ErrorEvent)] == ["limit"] and len(fal.calls) == 2
    srv.reset([text("fresh start")])
    events = await collect(runner.run_turn("hello again", None))
    assert events[-1].answer == "fresh start" and not any(isinstance(e, ErrorEvent) for e in events)
    # The stopped call was answered in the history, so the server got a valid conversation.
    sent = srv.requests[0]["messages"]
    ids = {tc["id"] for m in sent if m.get("tool_calls") for tc in m["tool_calls"]}
    assert ids == {m["tool_call_id"] for m in sent if m["role"] == "tool"}


async def test_cancelling_the_consumer_stops_the_tool_and_is_recorded(server_factory, personas, fake_tools, fal,
                                                                      transcript):
    gate = asyncio.Event()
    started = asyncio.Event()
    search = next(t for t in fake_tools if t.name == "search_models")
    original = search.coroutine

    async def slow(**kw):
        started.set()
        await gate.wait()
        return await original(**kw)

    search.coroutine = slow
    server_factory([calls(call("search_models", {"query": "flux"})), text("never")])
    runner = runner_for(personas["producer"], fake_tools, transcript)

    seen = []

    async def consume():
        async for event in runner.run_turn("search", None):
            seen.append(event)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fal.calls == [] and not any(isinstance(e, TurnEnd) for e in seen)
    rows = transcript.events(runner.session_id)
    assert rows[-1]["kind"] == "error" and rows[-1]["data"]["kind"] == "cancelled"


async def test_run_tool_passes_the_same_checks(personas, fake_tools, fal, transcript, approve):
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, transcript=transcript, user="tester")
    events = await collect(runner.run_tool("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "x"}},
                                           approve))
    # No estimate first: the guard prices the submit itself and asks.
    assert len(fal.submitted()) == 1 and events[0].estimate_usd == pytest.approx(0.025)
    await collect(runner.run_tool("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 2}}, approve))
    events = await collect(runner.run_tool("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "x"}},
                                           approve))
    assert len(fal.submitted()) == 2 and isinstance(events[0], ApprovalRequest)
    assert events[0].estimate_usd == pytest.approx(0.025) and runner.spent_usd == pytest.approx(0.05)
    assert [type(e) for e in events] == [ApprovalRequest, ToolStart, ToolEnd, TurnEnd]
    bad = await collect(runner.run_tool("get_pricing", {"endpoint_ids": 3}, approve))
    assert bad[-1].answer.startswith("Error: invalid arguments for get_pricing")
    analyst = AgentRunner(Settings(), personas["analyst"], fake_tools, user="tester")
    refused = await collect(analyst.run_tool("cancel_queue_request", {"endpoint_id": EP, "request_id": "r"}, approve))
    assert "outside the scope" in refused[-1].answer and fal.names().count("cancel_queue_request") == 0
    kinds = [r["kind"] for r in transcript.events(runner.session_id)]
    assert kinds.count("approval") == 2 and kinds.count("tool_error") == 1
