"""Text renders as written: placeholders, JSON and prompts survive Markdown."""

from __future__ import annotations

import html
import re

import pytest

from agent.tui.chat import AnswerMessage
from agent.tui.mdtext import as_markdown
from tests.tui.conftest import make_app, send, wait_for


@pytest.mark.parametrize("text, expected", [
    ("submit <endpoint> prompt", "submit \\<endpoint> prompt"),
    ("`code <kept>` and <escaped>", "`code <kept>` and \\<escaped>"),
    ("```\n<in a block>\n```", "```\n<in a block>\n```"),
    ('{"a": "*b*"}', '```json\n{"a": "*b*"}\n```'),
    ("one\ntwo", "one  \ntwo"),
    ("{not json", "{not json"),
    ("Cols:\n  a <x>    one\n  bb       two\nend", "Cols:\n\n```text\n  a <x>    one\n  bb       two\n```\n\nend"),
    ("  - a list  item", "  - a list  item"),
])
def test_as_markdown(text, expected):
    assert as_markdown(text) == expected


def _screen_text(app) -> str:
    """The screen's characters, line segments joined (tags dropped before entities are read)."""
    svg = app.export_screenshot()
    body = svg[svg.index("<g class=\"terminal"):] if "<g class=\"terminal" in svg else svg
    return html.unescape(re.sub(r"<[^>]+>", "", body)).replace("\xa0", " ")


async def test_placeholders_json_and_prompts_render_exactly():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await app.chat.add(AnswerMessage("Try: submit <endpoint> prompt \"<text>\"\n"
                                         '{"prompt": "a *red* fox_in_snow", "num_images": 2}'))
        await send(pilot, "a **literal** <prompt> with *stars*")
        await wait_for(pilot, lambda: app.turn_worker is not None and app.turn_worker.is_finished,
                       what="turn")
        await pilot.pause()
        shown = _screen_text(app)
        assert "submit <endpoint> prompt" in shown and '"<text>"' in shown
        assert '"a *red* fox_in_snow"' in shown
        assert "a **literal** <prompt> with *stars*" in shown  # the user's own message


async def test_streamed_answer_ends_as_written():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        message = await app.chat.add(AnswerMessage())
        for piece in ["use `watch <id>` or ", "watch <endpoint> <id>", "\n", '{"seed": 42}']:
            await message.stream(piece)
        await message.finish()
        await pilot.pause()
        shown = _screen_text(app)
        assert "watch <id>" in shown and "watch <endpoint> <id>" in shown and '{"seed": 42}' in shown


async def test_transcript_hit_keeps_and_highlights_the_match_and_opens_its_session(tmp_path):
    from textual.widgets import OptionList, TextArea

    from agent.transcript.store import TranscriptStore
    from agent.tui.browser import SessionView, TranscriptBrowser

    store = TranscriptStore(tmp_path / "t.sqlite3")
    sid = store.new_session("u", "producer")
    store.record(sid, "user_prompt", {"text": "a red fox in snow [with brackets]"}, user="u", persona="producer")
    app = make_app()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
            app.runtime.transcript = store
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: isinstance(app.screen, TranscriptBrowser), what="browser")
            for ch in "fox":
                await pilot.press(ch)
            results = app.screen.query_one("#browser-results", OptionList)
            await wait_for(pilot, lambda: results.option_count == 1, what="hit")
            prompt = results.get_option_at_index(0).prompt
            assert "a red fox in snow [with brackets]" in prompt.plain  # the word and brackets kept
            lit = [prompt.plain[s.start:s.end] for s in prompt.spans if "reverse" in str(s.style)]
            assert lit == ["fox"]
            await pilot.press("enter")  # from the search box to the results
            await pilot.press("enter")  # open the hit
            await wait_for(pilot, lambda: isinstance(app.screen, SessionView), what="session view")
            assert "a red fox in snow" in app.screen.query_one(TextArea).text
            await pilot.press("escape")
            assert isinstance(app.screen, TranscriptBrowser)
    finally:
        store.close()


def _screen_lines(app) -> list[str]:
    """The screen's lines with their spaces (the SVG export drops runs of spaces)."""
    return [strip.text.rstrip() for strip in app.screen._compositor.render_strips()]


async def test_planner_help_renders_exactly_with_its_placeholders_and_columns():
    from agent.planner.grammar import HELP_TEXT

    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        app.jobs.display = False
        await app.chat.add(AnswerMessage(HELP_TEXT))
        await pilot.pause()
        shown = [line.strip() for line in _screen_lines(app)]
        for line in HELP_TEXT.splitlines():
            assert line.strip() in shown, line  # every line as written: <endpoint>, the columns
        assert any("submit <endpoint> prompt \"<text>\"" in line for line in shown)


async def test_slash_help_lists_quit_and_every_key_as_bound():
    from agent.tui.commands import KEY_HELP
    from agent.tui.keys import DEFAULT_KEYS

    keys = {**DEFAULT_KEYS, "clear": "ctrl+k", "cancel": "escape,ctrl+g"}
    app = make_app(keys=keys)
    async with app.run_test(size=(160, 60)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        app.jobs.display = False
        await send(pilot, "/help")
        await wait_for(pilot, lambda: "ctrl+q" in app.query(AnswerMessage).last().text, what="help")
        text = app.query(AnswerMessage).last().text
        assert "`/quit`" in text and "/exit" in text
        assert "`ctrl+k`" in text and "ctrl+l" not in text and "`escape or ctrl+g`" in text
        for name, _ in KEY_HELP:
            assert keys[name].split(",")[0] in text, name
        assert "ctrl+p" in text and "pageup" in text
        await pilot.pause()
        shown = _screen_text(app)
        assert "/status [ENDPOINT ID]" in shown and "ctrl+q" in shown and "quits" in shown


@pytest.mark.parametrize("count, ask, shown, more", [
    (12, "search flux", 10, True),        # the fake tool's default page: 10 of 12, and how to get more
    (12, "search flux limit 12", 12, False),
    (40, "search flux limit 30", 30, True),
])
async def test_search_answer_lists_every_row_it_got_with_the_count(tmp_path, count, ask, shown, more):
    from tests.tui.real_runtime import RealFactory

    app = make_app(RealFactory(tmp_path, models=count))
    async with app.run_test(size=(160, 60)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, ask)
        await wait_for(pilot, lambda: app.turn_worker is not None and app.turn_worker.is_finished,
                       timeout=15, what="turn")
        await pilot.pause()
        answer = app.query(AnswerMessage).last().text
        rows = [f"fal-ai/model-{i:02d} | Model {i} [v{i}] | text-to-image | active" for i in range(count)]
        assert all(row in answer for row in rows[:shown]) and rows[shown - 1] in answer
        assert not any(row in answer for row in rows[shown:])
        assert f"({shown} models)" in answer
        assert (f"Showing {shown} models; more match" in answer) is more
        app.jobs.display = False
        await pilot.pause()
        screen = _screen_text(app)  # the last rows on screen as written (brackets kept)
        assert rows[shown - 1] in screen and f"({shown} models)" in screen
