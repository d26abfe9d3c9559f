"""The TUI's ctrl+r picker on a real transcript and a real runtime (offline planner, fake fal
tools, no sandbox): newest first, search narrows it, Enter reopens the chat; a 2,000-message
chat paints only its newest messages."""

from __future__ import annotations

import time

import pytest
from resume_support import FakeFal, build_fake_tools

from agent.core.runner import AgentRunner
from agent.core.runtime import Runtime
from agent.personas import load_personas
from agent.settings import Settings
from agent.transcript.store import TranscriptStore
from agent.tui.app import FalPersonaApp
from agent.tui.chat import UserMessage
from agent.tui.keys import DEFAULT_KEYS
from agent.tui.resume import ResumePicker

WHO = {"user": "ana", "persona": "producer"}


def chat_with(store: TranscriptStore, prompt: str, persona: str = "producer", turns: int = 1) -> str:
    sid = store.new_session("ana", persona)
    for i in range(turns):
        store.record(sid, "user_prompt", {"text": prompt if i == 0 else f"{prompt} #{i}"}, user="ana", persona=persona)
        store.record(sid, "model_response", {"role": "ai", "content": f"answer {i} to {prompt}"},
                     user="ana", persona=persona)
        store.record(sid, "answer", {"text": f"answer {i} to {prompt}"}, user="ana", persona=persona)
    return sid


@pytest.fixture
def runtime(tmp_path):
    store = TranscriptStore(tmp_path / "t.sqlite3")
    personas = load_personas()
    tools = build_fake_tools(FakeFal())
    settings = Settings()
    runner = AgentRunner(settings, personas["producer"], tools, transcript=store, user="ana")
    rt = Runtime(settings=settings, mode="sandbox", personas=personas, runner=runner, tools=tools,
                 client=None, transcript=store)
    yield rt
    store.close()


def app_for(runtime: Runtime, **kw) -> FalPersonaApp:
    return FalPersonaApp(runtime_factory=lambda settings, persona: runtime, settings=runtime.settings,
                         keys=dict(DEFAULT_KEYS), clock=lambda: 100.0, **kw)


async def until(pilot, condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def user_texts(app: FalPersonaApp) -> list[str]:
    return [str(w.render()) for w in app.chat.messages if isinstance(w, UserMessage)]


async def test_ctrl_r_lists_newest_first_searches_and_reopens(runtime):
    red = chat_with(runtime.transcript, "make me a red fox")
    chat_with(runtime.transcript, "search flux models", persona="analyst")
    app = app_for(runtime)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, app.ready.is_set, "the runtime")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ResumePicker) and app.screen.rows, "the picker's rows")
        picker = app.screen
        assert [r["title"] for r in picker.shown] == ["search flux models", "make me a red fox"]
        assert [r["persona"] for r in picker.shown] == ["analyst", "producer"]
        await pilot.press(*"red fox")
        await until(pilot, lambda: len(picker.shown) == 1, "the search to narrow the list")
        assert picker.shown[0]["id"] == red
        await pilot.press("enter")
        await until(pilot, lambda: app.runner.session_id == red and "make me a red fox" in user_texts(app),
                    "the red chat to reopen")
        assert not isinstance(app.screen, ResumePicker)
        assert app.runner.history[0].content == "make me a red fox"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ResumePicker) and app.screen.rows, "the picker again")
        await pilot.press(*"nothing matches this")
        await until(pilot, lambda: not app.screen.shown, "an empty list")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ResumePicker), "the picker to close")
        assert app.runner.session_id == red


async def test_a_long_chat_reopens_with_only_its_newest_messages_mounted(runtime):
    sid = chat_with(runtime.transcript, "long chat", turns=1000)  # 2,000 messages
    app = app_for(runtime, resume=sid, max_mounted=120)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, app.ready.is_set, "the runtime")
        assert app.runner.session_id == sid and len(app.runner.history) == 2000
        mounted = app.chat.messages
        assert len(mounted) <= 121 and app.chat.folded >= 2000 - 121
        assert user_texts(app)[-1] == "long chat #999"
