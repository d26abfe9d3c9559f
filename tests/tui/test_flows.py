"""Pilot tests of the chat flows against the fake runtime."""

from __future__ import annotations

from agent.tui.chat import AnswerMessage, ErrorMessage, NoticeMessage, UserMessage
from agent.tui.jobs import JobRow
from agent.tui.media_view import MediaPreview
from agent.tui.screens import ApprovalScreen
from agent.tui.toolcard import ToolCard
from tests.tui.conftest import make_app, send, wait_for


def texts(app, cls) -> list[str]:
    return [str(getattr(w, "text", None) or w.render()) for w in app.query(cls)]


async def test_send_tool_card_answer(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "search text-to-image")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        cards = list(app.query(ToolCard))
        assert [c.tool_name for c in cards] == ["search_models"]
        assert cards[0].done and not cards[0].error
        assert cards[0].args == {"query": "text-to-image"}
        answers = [w.text for w in app.query(AnswerMessage)]
        assert answers[-1] == "Found **2** models: `fal-ai/flux/dev` and `fal-ai/flux/schnell`."
        assert "search text-to-image" in texts(app, UserMessage)
        assert app.query_one("#prompt").text == ""
