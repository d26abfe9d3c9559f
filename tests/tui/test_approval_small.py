"""The approval modal and the header at 80x24: buttons on screen and working, the cost of
this call shown and re-priced as the arguments are edited, the spend kept in the header."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App

from agent.core.events import ApprovalRequest
from agent.tui.header import StatusHeader
from agent.tui.screens import ApprovalScreen
from tests.tui.conftest import make_app, send, wait_for
from tests.tui.fakes import FakeFactory

SMALL = (80, 24)


def _app():
    return make_app(FakeFactory(), history_path=Path("/nonexistent/history.txt"))


def _inside(region, size) -> bool:
    width, height = size
    return region.x >= 0 and region.y >= 0 and region.right <= width and region.bottom <= height


@pytest.mark.parametrize("button, action", [("#approve", "approve"), ("#reject", "reject")])
async def test_buttons_are_on_screen_and_work_at_80x24(button, action):
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "submit fal-ai/flux/dev")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval modal")
        await pilot.pause()
        screen = app.screen
        box = screen.query_one("#approval").region
        for name in ("#approve", "#edit", "#reject"):
            region = screen.query_one(name).region
            assert _inside(region, SMALL) and region.height == 3, (name, region)
            assert box.y < region.y and region.bottom <= box.bottom - 1, (name, region, box)  # inside the frame
        area = screen.query_one("#approval-args").region
        assert 3 <= area.height <= 10 and area.bottom <= screen.query_one("#approve").region.y
        await pilot.click(button)
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        assert app.runtime.runner.decisions[0].action == action
        assert not isinstance(app.screen, ApprovalScreen)


async def test_header_at_80_columns_keeps_spend_and_budget():
    app = _app()
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        app.header.spent, app.header.budget_left = 0.003, 4.997
        await pilot.pause()
        line = str(app.header.render())
        assert "spent $0.003 of $5.00" in line and len(line) <= 78, line
        assert app.header.persona in line


def test_header_condenses_step_by_step():
    header = StatusHeader()
    header.persona, header.model, header.mode = "producer", "gpt-4o-mini", "sandbox (no FAL_KEY)"
    header.budget_left, header.webhooks = 5.0, "on http://127.0.0.1:9999/hook"
    variants = ["".join(t for t, _ in v) for v in header._variants()]
    assert variants[0].startswith("fal-persona · persona producer · model gpt-4o-mini")
    assert all("spent $0.00 of $5.00" in v for v in variants)
    assert [len(v) for v in variants] == sorted((len(v) for v in variants), reverse=True)


class _Host(App):
    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request, self.decisions = request, []

    def on_mount(self) -> None:
        self.push_screen(ApprovalScreen(self.request), callback=self.decisions.append)


PRICED = ApprovalRequest("c1", "submit_queue_request",
                         {"endpoint_id": "fal-ai/flux/dev", "arguments": {"prompt": "a fox"}}, "spend",
                         0.025, 0.2, cost_basis="1 image × $0.025/image", unit_price_usd=0.025, unit="image")


async def test_edited_args_show_their_new_cost_before_approving():
    app = _Host(PRICED)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        money = app.screen.query_one("#approval-money")
        assert str(money.content) == "Cost of this call: $0.025 (1 image × $0.025/image)   ·   Budget left: $0.20"
        area = app.screen.query_one("#approval-args")
        area.text = '{"endpoint_id": "fal-ai/flux/dev", "arguments": {"prompt": "a fox", "num_images": 4}}'
        await pilot.pause()
        assert "Edited call: $0.10 (4 images × $0.025/image) (was $0.025)" in str(money.content)
        area.text = '{"endpoint_id": "fal-ai/flux/dev", "arguments": {"prompt": "a fox", "num_images": 12}}'
        await pilot.pause()
        assert "$0.30" in str(money.content) and "more than the budget left" in str(money.content)
        area.text = '{"endpoint_id": "fal-ai/flux/dev", "arguments": {"num_images": 4'  # half typed
        await pilot.pause()
        assert "$0.30" in str(money.content)  # the last good price stays
        area.text = '{"endpoint_id": "fal-ai/flux/dev", "arguments": {"prompt": "a fox", "num_images": 2}}'
        await pilot.pause()
        assert _inside(app.screen.query_one("#edit").region, SMALL)
        await pilot.click("#edit")
        await pilot.pause()
        (decision,) = app.decisions
        assert decision.action == "edit" and decision.args["arguments"]["num_images"] == 2


async def test_cost_unknown_is_said_plainly():
    request = ApprovalRequest("c2", "submit_queue_request", {"endpoint_id": "acme/x", "arguments": {}}, "spend",
                              None, 5.0, cost_basis="cost unknown: no price for this endpoint")
    app = _Host(request)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert str(app.screen.query_one("#approval-money").content).startswith("Cost of this call: cost unknown")
        await pilot.click("#approve")
        await pilot.pause()
        assert app.decisions[0].action == "approve"
