"""Money per call: a submit costs what its own arguments ask for, priced even without an
estimate, re-priced when edited, refused over budget; money() formats dollars."""

from __future__ import annotations

import pytest
from agent_support import Approver

from agent.cli.ask import _show
from agent.core.events import ApprovalRequest, Decision
from agent.core.gate import CallCost, Price, ToolGate, call_cost, money
from agent.core.runner import AgentRunner
from agent.settings import Settings

EP = "fal-ai/flux/dev"  # $0.025 per image in the fakes


async def collect(agen):
    return [e async for e in agen]


def submit(**arguments):
    return {"endpoint_id": EP, "arguments": {"prompt": "a fox", **arguments}}


@pytest.mark.parametrize("value, shown", [
    (None, "unknown"), (0, "$0.00"), (0.003, "$0.003"), (0.0025, "$0.0025"), (0.025, "$0.025"),
    (0.0376, "$0.0376"), (0.00111, "$0.00111"), (0.1, "$0.10"), (0.25, "$0.25"), (0.5, "$0.50"),
    (1.5, "$1.50"), (12, "$12.00"), (12.5, "$12.50"), (1234.5, "$1,234.50"), (-0.5, "-$0.50"),
    (float("nan"), "unknown"),
])
def test_money_formatting_table(value, shown):
    assert money(value) == shown


@pytest.mark.parametrize("unit, price, arguments, usd, basis_part", [
    ("image", 0.025, {}, 0.025, "1 image"),
    ("image", 0.025, {"num_images": 4}, 0.1, "4 images"),
    ("megapixels", 0.003, {"image_size": "landscape_4_3"}, 0.003, "1 megapixel"),
    ("megapixels", 0.003, {"image_size": {"width": 2048, "height": 2048}, "num_images": 2}, 0.024, "8 megapixels"),
    ("seconds", 0.28, {"duration": "10"}, 2.8, "10 seconds (duration)"),
    ("seconds", 0.002, {"seconds_total": 5}, 0.01, "5 seconds"),
    ("seconds", 0.1, {"num_frames": 48}, 0.2, "num_frames at 24 fps"),
    ("videos", 0.5, {"duration": "10"}, 0.5, "1 video"),
    ("1000 characters", 0.1, {"text": "x" * 500}, 0.05, "500 characters"),
    ("steps", 0.0024, {"steps": 500}, 1.2, "500 steps"),
    ("training runs", 2.0, {}, 2.0, "1 training run"),
])
def test_call_cost_by_unit(unit, price, arguments, usd, basis_part):
    cost = call_cost(Price("x", price, unit), arguments)
    assert cost.usd == pytest.approx(usd) and basis_part in cost.basis


def test_call_cost_falls_back_to_the_typical_call_then_to_unknown():
    # Compute seconds: the arguments cannot say; fal's typical price of one call can.
    typical = call_cost(Price("x", 0.00111, "compute seconds", per_call_usd=0.00222), {})
    assert typical.usd == pytest.approx(0.00222) and "typical" in typical.basis
    assumed = call_cost(Price("x", 0.00111, "compute seconds"), {})
    assert assumed.usd == pytest.approx(0.00111) and "assumed" in assumed.basis
    unknown = call_cost(None, {"num_images": 2})
    assert unknown.usd is None and unknown.basis.startswith("cost unknown")


async def test_four_image_estimate_then_one_image_submit_charges_one_image(personas, fake_tools, fal, approve):
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, user="t")
    await collect(runner.run_tool("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 4}}, approve))
    await collect(runner.run_tool("get_pricing", {"endpoint_ids": [EP]}, approve))
    events = await collect(runner.run_tool("submit_queue_request", submit(num_images=1), approve))
    request = events[0]
    assert isinstance(request, ApprovalRequest) and request.estimate_usd == pytest.approx(0.025)
    assert request.cost_basis == "1 image × $0.025/image"
    assert runner.spent_usd == pytest.approx(0.025) and runner.budget_left_usd == pytest.approx(4.975)
    # Two images next time: that call's cost, added to what was spent.
    await collect(runner.run_tool("submit_queue_request", submit(num_images=2), approve))
    assert approve.requests[-1].estimate_usd == pytest.approx(0.05) and runner.spent_usd == pytest.approx(0.075)


async def test_edited_args_are_re_priced_and_charged(personas, fake_tools, fal, transcript):
    edit = Approver(Decision(action="edit", args=submit(num_images=4)))
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, transcript=transcript, user="t")
    await collect(runner.run_tool("submit_queue_request", submit(), edit))
    assert edit.requests[0].estimate_usd == pytest.approx(0.025)  # shown: the call as asked
    assert fal.submitted()[-1]["arguments"]["num_images"] == 4
    assert runner.spent_usd == pytest.approx(0.1)  # charged: the call that ran
    row = next(r for r in transcript.events(runner.session_id) if r["kind"] == "approval")
    assert row["data"]["estimate_usd"] == pytest.approx(0.025)
    assert row["data"]["edited_estimate_usd"] == pytest.approx(0.1) and "4 images" in row["data"]["edited_cost_basis"]


async def test_edited_args_over_budget_are_refused(personas, fake_tools, fal):
    edit = Approver(Decision(action="edit", args=submit(num_images=1000)))
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, user="t")
    events = await collect(runner.run_tool("submit_queue_request", submit(), edit))
    assert fal.submitted() == [] and runner.spent_usd == 0
    assert "budget" in events[-1].answer and "$25.00" in events[-1].answer


async def test_submit_with_no_estimate_is_priced_automatically_and_approved(personas, fake_tools, fal, approve,
                                                                           transcript):
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, transcript=transcript, user="t")
    events = await collect(runner.run_tool("submit_queue_request", submit(num_images=3), approve))
    assert fal.names() == ["get_pricing", "submit_queue_request"]
    request = events[0]
    assert request.estimate_usd == pytest.approx(0.075) and request.unit == "image"
    assert request.unit_price_usd == pytest.approx(0.025) and "3 images" in request.cost_basis
    assert runner.spent_usd == pytest.approx(0.075)
    row = next(r for r in transcript.events(runner.session_id) if r["kind"] == "approval")
    assert row["data"]["estimate_usd"] == pytest.approx(0.075) and row["data"]["decision"] == "approve"
    # The price is remembered: a second submit looks nothing up.
    await collect(runner.run_tool("submit_queue_request", submit(), approve))
    assert fal.names().count("get_pricing") == 1


async def test_no_price_to_be_had_says_cost_unknown_and_the_user_decides(personas, fake_tools, fal, approve):
    # No pricing tools at all: neither the unit price nor a typical call can be had.
    tools = [t for t in fake_tools if t.name not in ("get_pricing", "estimate_pricing")]
    runner = AgentRunner(Settings(), personas["producer"], tools, user="t")
    unknown = {"endpoint_id": "acme/unpriced", "arguments": {"prompt": "x"}}
    events = await collect(runner.run_tool("submit_queue_request", unknown, approve))
    request = events[0]
    assert isinstance(request, ApprovalRequest) and request.estimate_usd is None
    assert request.cost_basis.startswith("cost unknown")
    assert len(fal.submitted()) == 1 and runner.spent_usd == 0 and runner.gate.unpriced_submits == 1
    assert "cost of this call: cost unknown" in _show(request)


async def test_budget_guard_refuses_an_over_budget_submit_before_approval(personas, fake_tools, fal, approve):
    runner = AgentRunner(Settings(), personas["producer"], fake_tools, user="t")
    events = await collect(runner.run_tool("submit_queue_request", submit(num_images=201), approve))
    assert approve.requests == [] and fal.submitted() == []
    assert "$5.03" in events[-1].answer and "$5.00" in events[-1].answer and "201 images" in events[-1].answer


class _Persona:
    name, tools, approval, budget_usd = "p", ["submit_queue_request"], [], 1.0


async def test_unknown_cost_with_no_approver_is_refused_under_a_budget():
    gate = ToolGate(_Persona())
    cost = await gate.cost_of({"endpoint_id": EP, "arguments": {}})
    assert cost.usd is None
    assert "unknown" in gate.refusal("submit_queue_request", {"endpoint_id": EP}, cost)
    assert gate.refusal("submit_queue_request", {"endpoint_id": EP}, CallCost(0.5, "x")) is None
    assert "budget" in gate.refusal("submit_queue_request", {"endpoint_id": EP}, CallCost(1.5, "x"))


def test_ask_prompt_shows_the_call_cost_to_the_precision_that_matters():
    request = ApprovalRequest("c", "submit_queue_request", {"endpoint_id": "fal-ai/flux/schnell"}, "spend",
                              0.003, 4.997, cost_basis="1 megapixel (1 image) × $0.003/megapixel")
    text = _show(request)
    assert "cost of this call: $0.003 (1 megapixel (1 image) × $0.003/megapixel)" in text
    assert "budget left: $5.00" in text and "$0.00 " not in text and not text.rstrip().endswith("$0.00")
