"""Transcript browser, command palette, webhook notices and the light import of the TUI."""

from __future__ import annotations

import subprocess
import sys

from textual.widgets import OptionList

from agent.tui.browser import TranscriptBrowser
from agent.tui.chat import NoticeMessage
from tests.tui.conftest import make_app, send, wait_for


async def test_transcript_browser_searches(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "search text-to-image")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, TranscriptBrowser), what="browser")
        for ch in "text":
            await pilot.press(ch)
        results = app.screen.query_one("#browser-results", OptionList)
        await wait_for(pilot, lambda: results.option_count == 2, what="search hits")
        assert "user_prompt" in str(results.get_option_at_index(1).prompt)
        await pilot.press("escape")
        assert not isinstance(app.screen, TranscriptBrowser)


async def test_command_palette_toggles_theme(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        before = app.theme
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for ch in "Toggle theme":
            await pilot.press(ch if ch != " " else "space")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme != before, what="theme change")


async def test_webhook_notice_reaches_jobs_and_chat(factory):
    from tests.tui.fakes import png_data_url

    class Notice:
        kind, request_id, status, endpoint_id, detail = "received", "req-w", "OK", "fal-ai/flux/dev", ""
        data = {"payload": {"images": [{"url": png_data_url(), "content_type": "image/png"}]}}

    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        app.post_message(app.WebhookNotice(Notice()))
        await wait_for(pilot, lambda: "req-w" in app.jobs.rows, what="job row")
        row = app.jobs.rows["req-w"]
        await wait_for(pilot, lambda: row.status == "COMPLETED", what="completed")
        assert "1 image" in str(row.query_one(".job-result").content)
        assert any("webhook received" in str(w.content) for w in app.query(NoticeMessage))


def test_tui_import_stays_light():
    code = ("import sys, agent.tui.app; heavy = [m for m in ('langchain', 'langchain_core', 'httpx', "
            "'sandbox', 'langgraph', 'PIL') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
