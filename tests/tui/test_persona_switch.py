"""One session across personas, and slash commands that mean "the latest request", on the
real runner (offline planner, ToolGate, TranscriptStore) behind the app."""

from __future__ import annotations

import json

from agent.core.events import Decision
from agent.tui.chat import ErrorMessage, NoticeMessage, UserMessage
from agent.tui.screens import PersonaScreen
from tests.tui.conftest import make_app, send, wait_for
from tests.tui.real_runtime import RealFactory

EP = "fal-ai/flux/dev"


def _approve_all(app) -> list:
    asked: list = []

    async def approve(request):
        asked.append(request)
        return Decision(action="approve")

    app.approve = approve
    return asked


async def _turn(pilot, text: str) -> None:
    app = pilot.app
    await send(pilot, text)
    await wait_for(pilot, lambda: app.turn_worker is not None and app.turn_worker.is_finished
                   and not app.pending, timeout=15, what=f"turn {text!r}")
    await pilot.pause()


def _calls(factory: RealFactory, name: str) -> list[dict]:
    return [args for n, args in factory.fal.calls if n == name]


async def test_slash_status_without_ids_uses_the_conversations_latest_request(tmp_path):
    factory = RealFactory(tmp_path)
    app = make_app(factory)
    _approve_all(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await _turn(pilot, "/status")  # nothing yet: said clearly, nothing called
        assert any("no request in this session yet" in str(w.content) for w in app.query(ErrorMessage))
        assert not _calls(factory, "get_queue_status")
        await _turn(pilot, f'submit {EP} prompt "a heron"')
        rid = next(iter(factory.fal.jobs))
        for command, tool in (("/status", "get_queue_status"), ("/watch", "stream_queue_status"),
                              ("/result", "get_queue_result")):
            await _turn(pilot, command)
            assert _calls(factory, tool)[-1] == {"endpoint_id": EP, "request_id": rid}, command
        assert any(f"the latest request: {EP} {rid}" in str(w.content) for w in app.query(NoticeMessage))


async def test_persona_switch_keeps_conversation_spend_latest_request_and_session(tmp_path):
    factory = RealFactory(tmp_path)
    app = make_app(factory)
    _approve_all(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None and app.personas, what="runtime")
        await _turn(pilot, f'estimate 1 {EP} then submit {EP} prompt "a heron"')
        runner = app.runtime.runner
        spent, session = runner.spent_usd, runner.session_id
        rid = next(iter(factory.fal.jobs))
        assert spent > 0 and app.header.spent == spent

        await _turn(pilot, "/persona analyst")
        await wait_for(pilot, lambda: app.header.persona == "analyst", what="switch")
        analyst = app.runtime.runner
        assert analyst is not runner and analyst.persona.name == "analyst"
        assert analyst.session_id == session  # one transcript session
        assert analyst.spent_usd == spent and app.header.spent == spent  # the spend goes on
        assert analyst.budget_left_usd == max(0.0, analyst.persona.budget_usd - spent)  # its budget
        # The conversation stays on screen.
        assert any('submit fal-ai/flux/dev prompt "a heron"' in str(w.content) for w in app.query(UserMessage))
        # "the latest request" is still the producer's: for the planner and for the slash command.
        await _turn(pilot, "status")
        assert _calls(factory, "get_queue_status")[-1] == {"endpoint_id": EP, "request_id": rid}
        await _turn(pilot, "/status")
        assert len(_calls(factory, "get_queue_status")) == 2
        assert _calls(factory, "get_queue_status")[-1] == {"endpoint_id": EP, "request_id": rid}
        # The new persona's scope applies from the switch on.
        await _turn(pilot, f'submit {EP} prompt "not mine to spend"')
        assert len(_calls(factory, "submit_queue_request")) == 1

        # Back with the picker (ctrl+o): still the same session.
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PersonaScreen), what="picker")
        await pilot.press("down", "down", "enter")  # sorted: analyst (current), ops, producer
        await wait_for(pilot, lambda: app.header.persona == "producer", what="picker switch")
        assert app.runtime.runner.session_id == session and app.runtime.runner.spent_usd == spent

        store = app.runtime.transcript
        switches = [r for r in store.events(session) if r["kind"] == "persona_switch"]
        assert [(r["data"]["from"], r["data"]["to"]) for r in switches] == [("producer", "analyst"),
                                                                          ("analyst", "producer")]
        # One export covers the whole session, both personas.
        await _turn(pilot, "/export jsonl")
        note = [str(w.content) for w in app.query(NoticeMessage) if "exported to" in str(w.content)][-1]
        path = note.split("exported to ", 1)[1].strip()
        rows = [json.loads(line) for line in open(path, encoding="utf-8")]
        texts = json.dumps(rows)
        assert "a heron" in texts and "not mine to spend" in texts
        assert {r.get("kind") for r in rows} >= {"persona_switch", "user_prompt"}

        # /new is the one way to start over.
        await _turn(pilot, "/new")
        await wait_for(pilot, lambda: app.runtime.runner.session_id != session, what="new session")
        assert app.runtime.runner.spent_usd == 0


async def test_fake_runtime_switch_follows_the_contract(factory):
    """The fake the other TUI tests use switches like the real runtime (same session)."""
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.personas, what="personas")
        session = app.runtime.runner.session_id
        app.runtime.runner.spent_usd = 0.5
        await send(pilot, "/persona analyst")
        await wait_for(pilot, lambda: app.header.persona == "analyst", what="switch")
        assert app.runtime.runner.session_id == session and app.header.spent == 0.5
        rows = [r for r in app.runtime.transcript.rows if r["kind"] == "persona_switch"]
        assert rows and rows[-1]["data"] == {"from": "producer", "to": "analyst"}
