"""Pilot tests of the chat flows against the fake runtime."""

from __future__ import annotations

from agent.tui.chat import AnswerMessage, ErrorMessage, NoticeMessage, UserMessage
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


def statics(app, cls) -> list[str]:
    return [str(w.content) for w in app.query(cls)]


async def test_submit_approved_shows_job_progress_and_image(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, 'submit fal-ai/flux/dev prompt "a cat"')
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval modal")
        money = str(app.screen.query_one("#approval-money").content)
        assert "$0.025 " in money and "$5.00" in money
        await pilot.click("#approve")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        runner = app.runtime.runner
        assert runner.decisions[0].action == "approve"
        assert [n for n, _ in runner.tool_calls] == ["submit_queue_request"]
        row = app.jobs.rows["req-0001"]
        assert row.status == "COMPLETED" and row.endpoint_id == "fal-ai/flux/dev"
        assert "1 image" in str(row.query_one(".job-result").content)
        from textual.widgets import ProgressBar
        bar = row.query_one(ProgressBar)
        assert bar.total == bar.progress
        await wait_for(pilot, lambda: any(m.data for m in app.query(MediaPreview)), what="image preview")
        assert "approved: submit_queue_request" in statics(app, NoticeMessage)
        assert app.header.spent == 0.025
        # Save the image through the preview's button: a real PNG lands in the media dir.
        await app.query_one(MediaPreview).save()
        from agent.locations import media_dir
        saved = list(media_dir().iterdir())
        assert len(saved) == 1 and saved[0].read_bytes()[:4] == b"\x89PNG"


async def test_submit_rejected(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "submit fal-ai/flux/dev")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval modal")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        assert app.runtime.runner.decisions[0].action == "reject"
        assert app.runtime.runner.tool_calls == []
        assert not app.jobs.rows
        assert "rejected: submit_queue_request" in statics(app, NoticeMessage)


async def test_submit_edited_args_are_validated(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "submit fal-ai/flux/dev")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval modal")
        area = app.screen.query_one("#approval-args")
        area.text = "[1, 2"
        await pilot.click("#edit")
        assert "not valid JSON" in str(app.screen.query_one("#approval-error").content)
        area.text = '{"endpoint_id": "fal-ai/flux/schnell", "arguments": {"prompt": "a dog"}}'
        await pilot.pause(0.6)  # a second click on the same spot this soon would be a double-click
        await pilot.click("#edit")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        decision = app.runtime.runner.decisions[0]
        assert decision.action == "edit" and decision.args["arguments"] == {"prompt": "a dog"}
        assert app.runtime.runner.tool_calls[0][1]["endpoint_id"] == "fal-ai/flux/schnell"


async def test_escape_cancels_running_turn(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "slow")
        await wait_for(pilot, lambda: app.runtime.runner.started.is_set(), what="slow turn")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="cancel")
        assert app.runtime.runner.cancelled
        assert statics(app, NoticeMessage)[-1] == "cancelled"
        assert not app.header.busy
        # The app is usable again afterwards.
        await send(pilot, "hello")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="next turn")
        assert app.query(AnswerMessage).last().text == "You said: hello"


async def test_error_event_is_readable(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "boom")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        errors = statics(app, ErrorMessage)
        assert errors == ["⚠ the model server answered 500; try again in a minute"]
        assert "Traceback" not in errors[0]


async def test_runtime_failure_is_a_message_not_a_crash():
    from tests.tui.fakes import FakeFactory
    app = make_app(FakeFactory(error=RuntimeError("sandbox port busy")))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready.is_set(), what="ready")
        assert any("sandbox port busy" in e for e in statics(app, ErrorMessage))
        await send(pilot, "hello")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        assert "the agent is not running" in statics(app, ErrorMessage)[-1]


async def test_switch_persona_with_slash_and_picker(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.personas, what="personas")
        await send(pilot, "/persona analyst")
        await wait_for(pilot, lambda: app.header.persona == "analyst", what="switch")
        assert app.runtime.runner.persona.name == "analyst"
        assert any(n.startswith("persona: analyst · same session") for n in statics(app, NoticeMessage))
        await send(pilot, "/persona nobody")
        await wait_for(pilot, lambda: app.query(ErrorMessage), what="error")
        assert "no persona named 'nobody'" in statics(app, ErrorMessage)[-1]
        from agent.tui.screens import PersonaScreen
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PersonaScreen), what="picker")
        await pilot.press("down", "enter")  # the list opens on the current one (analyst)
        await wait_for(pilot, lambda: app.header.persona == "producer", what="picker switch")


async def test_slash_commands_call_tools_directly(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "/estimate 10 fal-ai/flux/dev")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="tool")
        await send(pilot, "/status fal-ai/flux/dev req-9")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="tool")
        assert app.runtime.runner.tool_calls == [
            ("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {"fal-ai/flux/dev": 10}}),
            ("get_queue_status", {"endpoint_id": "fal-ai/flux/dev", "request_id": "req-9"}),
        ]
        assert "req-9" in app.jobs.rows
        await send(pilot, "/frobnicate")
        await wait_for(pilot, lambda: app.query(ErrorMessage), what="error")
        assert statics(app, ErrorMessage)[-1] == "⚠ unknown command /frobnicate; type /help for the list"
        await send(pilot, "/help")
        await wait_for(pilot, lambda: "/estimate N ENDPOINT" in app.query(AnswerMessage).last().text, what="help")


async def test_export_writes_file_and_says_where(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "search text-to-image")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn")
        await send(pilot, "/export jsonl")
        await wait_for(pilot, lambda: any("exported" in t for t in statics(app, NoticeMessage)), what="export")
        note = [t for t in statics(app, NoticeMessage) if "exported" in t][-1]
        from pathlib import Path
        path = Path(note.split(" to ", 1)[1])
        assert path.suffix == ".jsonl" and path.exists()
        assert '"user_prompt"' in path.read_text() and "search text-to-image" in path.read_text()
        await pilot.press("ctrl+s")  # the Markdown export binding
        await wait_for(pilot, lambda: sum("exported" in t for t in statics(app, NoticeMessage)) == 2, what="md")
        assert statics(app, NoticeMessage)[-1].endswith(".md")


async def test_history_keys_and_ctrl_l_and_ctrl_j(factory, tmp_path):
    hist = tmp_path / "history.txt"
    app = make_app(factory, history_path=hist)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        for text in ("first", "second"):
            await send(pilot, text)
            await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn")
        prompt = app.query_one("#prompt")
        await pilot.press("d", "r", "a", "f", "t")
        await pilot.press("up")
        assert prompt.text == "second"
        await pilot.press("up")
        assert prompt.text == "first"
        await pilot.press("down", "down")
        assert prompt.text == "draft"
        await pilot.press("ctrl+j", "x")
        assert prompt.text == "draft\nx"
        assert hist.read_text().splitlines() == ["first", "second"]
        assert len(app.chat.messages) > 2
        await pilot.press("ctrl+l")
        await pilot.pause(0.05)
        assert app.chat.messages == []
    # History survives a restart.
    app2 = make_app(factory, history_path=hist)
    async with app2.run_test(size=(120, 40)) as pilot:
        await pilot.press("up")
        assert app2.query_one("#prompt").text == "second"


async def test_input_sent_during_a_turn_is_queued_not_lost(factory):
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "search text-to-image")
        await send(pilot, "hello")  # the first turn is still running
        await wait_for(pilot, lambda: not app.pending and app.turn_worker.is_finished
                       and app.query(AnswerMessage).last().text == "You said: hello", what="queued turn")
        assert [n for n, _ in app.runtime.runner.tool_calls] == ["search_models"]


async def test_save_and_open_buttons_say_how_it_went(factory, monkeypatch):
    import agent.media

    opened = []
    monkeypatch.setattr(agent.media, "open_in_viewer", lambda path: opened.append(path) or None)
    app = make_app(factory)
    notes: list[tuple[str, str]] = []
    monkeypatch.setattr(app, "notify", lambda message, severity="information", **_: notes.append((message, severity)))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, 'submit fal-ai/flux/dev prompt "a cat"')
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval modal")
        await pilot.click("#approve")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        preview = app.query_one(MediaPreview)
        await wait_for(pilot, lambda: preview.shown, what="image preview")
        preview.query_one("#save-media").press()
        await wait_for(pilot, lambda: len(notes) == 1, what="saved notice")
        assert notes[0][0].startswith("saved to ") and notes[0][1] == "information"
        preview.query_one("#open-media").press()  # reuses the file just saved
        await wait_for(pilot, lambda: len(notes) == 2, what="opened notice")
        assert notes[1] == (f"opened {preview.saved_path.name}", "information") and opened == [preview.saved_path]
        row = app.jobs.rows["req-0001"]
        await wait_for(pilot, lambda: not row.query_one("#save").disabled, what="job save enabled")
        row.query_one("#save").press()
        await wait_for(pilot, lambda: len(notes) == 3, what="job saved notice")
        assert notes[2][0].startswith("saved to ") and notes[2][1] == "information"
