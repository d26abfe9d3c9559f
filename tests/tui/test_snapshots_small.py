"""Snapshots at 80x24 (frozen clock, no blinking cursor): the main screen and the approval modal."""

from __future__ import annotations

from agent.tui.screens import ApprovalScreen
from tests.tui.conftest import wait_for
from tests.tui.test_snapshots import _app, send, steady

SMALL = (80, 24)


def test_snapshot_main_screen_80x24(snap_compare):
    async def ready(pilot):
        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SMALL, run_before=ready)


def test_snapshot_approval_modal_80x24(snap_compare):
    async def submit(pilot):
        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await send(pilot, "submit fal-ai/flux/dev")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen), what="modal")
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SMALL, run_before=submit)
