"""The offline planner: its grammar case by case, and the chat model driving the runner."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agent.core.events import ToolEnd, TurnEnd
from agent.core.runner import AgentRunner
from agent.planner import GrammarError, OfflinePlanner, parse
from agent.planner.grammar import split_steps
from agent.settings import Settings

EP = "fal-ai/flux/dev"
RID = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"

GRAMMAR = [
    ("search flux", "search_models", {"query": "flux"}),
    ("search flux in text-to-image", "search_models", {"query": "flux", "category": "text-to-image"}),
    ("find text-to-image models", "search_models", {"category": "text-to-image"}),
    ("models for flux", "search_models", {"query": "flux"}),
    ("which models are there for video?", "search_models", {"query": "video"}),
    (f"price {EP}", "get_pricing", {"endpoint_ids": [EP]}),
    (f"price {EP} fal-ai/flux/schnell", "get_pricing", {"endpoint_ids": [EP, "fal-ai/flux/schnell"]}),
    (f"how much is {EP}?", "get_pricing", {"endpoint_ids": [EP]}),
    (f"estimate 10 {EP}", "estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 10}}),
    (f"estimate 10 images of {EP}", "estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 10}}),
    (f"estimate 100 calls of {EP}", "estimate_pricing",
     {"estimate_type": "historical_api_price", "endpoints": {EP: 100}}),
    (f"how much would 5 images of {EP} cost", "estimate_pricing",
     {"estimate_type": "unit_price", "endpoints": {EP: 5}}),
    (f'submit {EP} prompt "a cat then a dog" num_images=2 priority=low', "submit_queue_request",
     {"endpoint_id": EP, "arguments": {"prompt": "a cat then a dog", "num_images": 2}, "priority": "low"}),
    (f'submit {EP} {{"prompt": "x", "seed": 7}}', "submit_queue_request",
     {"endpoint_id": EP, "arguments": {"prompt": "x", "seed": 7}}),
    ('generate "a red fox" with fal-ai/flux/schnell', "submit_queue_request",
     {"endpoint_id": "fal-ai/flux/schnell", "arguments": {"prompt": "a red fox"}}),
    ("please generate an image of a watercolor fox with fal-ai/flux/schnell", "submit_queue_request",
     {"endpoint_id": "fal-ai/flux/schnell", "arguments": {"prompt": "a watercolor fox"}}),
    (f"status {EP} {RID}", "get_queue_status", {"endpoint_id": EP, "request_id": RID}),
    (f"watch {EP} {RID}", "stream_queue_status", {"endpoint_id": EP, "request_id": RID}),
    (f"stream {EP} {RID}", "stream_queue_status", {"endpoint_id": EP, "request_id": RID}),
    (f"result {EP} {RID}", "get_queue_result", {"endpoint_id": EP, "request_id": RID}),
    (f"cancel {EP} {RID}", "cancel_queue_request", {"endpoint_id": EP, "request_id": RID}),
    ("jwks", "get_webhook_jwks", {}),
    ("show the webhook keys", "get_webhook_jwks", {}),
    ("help", None, {"help": True}),
]


@pytest.mark.parametrize(("text", "tool", "args"), GRAMMAR, ids=[g[0][:40] for g in GRAMMAR])
def test_grammar_case(text, tool, args):
    (step,) = parse(text)
    assert (step.tool, step.args, step.needs_ref) == (tool, args, False)


@pytest.mark.parametrize("text", ["watch it", "then result", "check it", "cancel it"])
def test_references_wait_for_an_earlier_request(text):
    (step,) = parse(text.removeprefix("then "))
    assert step.needs_ref and step.args == {}


def test_then_splits_steps_but_not_inside_quotes():
    assert split_steps('submit x prompt "a then b" then watch it; result') == [
        'submit x prompt "a then b"', "watch it", "result"]


@pytest.mark.parametrize("text", ["make me a sandwich", "estimate fal-ai/flux/dev", "price nothing",
                                  "tell me a joke", f"submit {EP} {{not json}}", "  "])
def test_not_understood(text):
    with pytest.raises(GrammarError):
        parse(text)


def _bound(*names):
    return [{"type": "function", "function": {"name": n, "parameters": {}}} for n in names]


def test_planner_chains_with_references_from_the_submit_result():
    planner = OfflinePlanner(streaming=True)
    human = HumanMessage(f'submit {EP} prompt "fox" then watch it then result')
    tools = _bound("submit_queue_request", "stream_queue_status", "get_queue_result")
    first = planner.plan([human], tools)
    assert first.tool_calls[0]["name"] == "submit_queue_request"
    done = ToolMessage(f"Submitted to {EP}. request_id: {RID}", tool_call_id=first.tool_calls[0]["id"])
    second = planner.plan([human, first, done], tools)
    assert second.tool_calls[0]["args"] == {"endpoint_id": EP, "request_id": RID}
    assert second.tool_calls[0]["name"] == "stream_queue_status"


def test_planner_refuses_a_tool_that_is_not_bound():
    message = OfflinePlanner().plan([HumanMessage(f"cancel {EP} {RID}")], _bound("search_models"))
    assert not message.tool_calls and "may not use cancel_queue_request" in message.content


def test_planner_says_what_it_did_not_understand():
    message = OfflinePlanner().plan([HumanMessage("paint my house")], _bound("search_models"))
    assert 'did not understand "paint my house"' in message.content and "/help" in message.content


def test_reference_without_an_earlier_request_is_explained():
    message = OfflinePlanner().plan([HumanMessage("watch it")], _bound("stream_queue_status"))
    assert not message.tool_calls and "request id" in message.content


def test_planner_stops_after_a_failed_step():
    planner = OfflinePlanner()
    human = HumanMessage(f"price {EP} then search flux")
    first = planner.plan([human], _bound("get_pricing", "search_models"))
    failed = ToolMessage("Error: unknown endpoint", tool_call_id=first.tool_calls[0]["id"], status="error")
    final = planner.plan([human, first, failed], _bound("get_pricing", "search_models"))
    assert isinstance(final, AIMessage) and not final.tool_calls and "I stopped" in final.content


async def test_planner_drives_the_runner_through_a_chain(personas, fake_tools, fal, approve):
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, user="t")
    assert runner.model_name == "offline-planner"
    text = f'search flux then estimate 2 {EP} then submit {EP} prompt "a fox" then watch it then result'
    events = [e async for e in runner.run_turn(text, approve)]
    # get_pricing is the guard's own lookup: the estimate told a price but not its unit.
    assert fal.names() == ["search_models", "estimate_pricing", "get_pricing", "submit_queue_request",
                           "stream_queue_status", "get_queue_result"]
    assert not any(e.error for e in events if isinstance(e, ToolEnd))
    assert isinstance(events[-1], TurnEnd) and "fetched the result" in events[-1].answer
    # "watch it" in a later turn still finds the request.
    events = [e async for e in runner.run_turn("status", approve)]
    assert fal.names()[-1] == "get_queue_status" and "COMPLETED" in events[-1].answer


async def test_planner_in_a_read_only_persona_never_submits(personas, fake_tools, fal, approve):
    runner = AgentRunner(Settings(), personas["analyst"], fake_tools, user="t")
    events = [e async for e in runner.run_turn(f'estimate 1 {EP} then submit {EP} prompt "x"', approve)]
    assert fal.names() == ["estimate_pricing"] and "may not use submit_queue_request" in events[-1].answer


def test_search_summary_lists_every_row_with_the_count():
    from langchain_core.messages import ToolMessage

    from agent.planner.model import OfflinePlanner

    rows = "\n".join(f"fal-ai/model-{i} | Model {i} | text-to-image | active" for i in range(12))
    table = f"endpoint_id | name | category | status\n{rows}\n(12 models) No more pages."
    call = {"name": "search_models", "args": {"query": "model"}, "id": "c1"}
    done = [(call, ToolMessage(content=table, tool_call_id="c1", name="search_models"))]
    summary = OfflinePlanner._summary([], done)
    assert all(f"fal-ai/model-{i} |" in summary for i in range(12))
    assert "(12 models)" in summary
