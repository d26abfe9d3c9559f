"""Snapshot tests of the main screens (fixed size, frozen clock, no spinners in the shot)."""

from __future__ import annotations

from pathlib import Path

from agent.tui.screens import ApprovalScreen
from tests.tui.conftest import make_app, send, wait_for
from tests.tui.fakes import FakeFactory

SIZE = (110, 36)


def _app():
    return make_app(FakeFactory(), history_path=Path("/nonexistent/history.txt"))


async def steady(pilot) -> None:
    """No blinking cursor: its phase at the moment of the shot would decide the snapshot."""
    from textual.widgets import Input, TextArea

    for widget in (*pilot.app.query(Input), *pilot.app.query(TextArea)):
        widget.cursor_blink = False
    await pilot.pause()


def test_snapshot_welcome(snap_compare):
    async def ready(pilot):
        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=ready)


def test_snapshot_after_search(snap_compare):
    async def search(pilot):
        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await send(pilot, "search text-to-image")
        await wait_for(pilot, lambda: pilot.app.turn_worker.is_finished, what="turn")
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=search)


def test_snapshot_approval_modal(snap_compare):
    async def submit(pilot):
        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await send(pilot, "submit fal-ai/flux/dev")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen), what="modal")
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=submit)


def test_snapshot_job_done_with_image(snap_compare):
    async def submit(pilot):
        from agent.tui.media_view import MediaPreview

        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await send(pilot, "submit fal-ai/flux/dev")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen), what="modal")
        await pilot.click("#approve")
        await wait_for(pilot, lambda: pilot.app.turn_worker.is_finished, what="turn")
        await wait_for(pilot, lambda: all(m.shown for m in pilot.app.query(MediaPreview)), what="image")
        await pilot.wait_for_scheduled_animations()
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=submit)
