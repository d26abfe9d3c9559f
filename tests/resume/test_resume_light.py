"""A reopened chat is drawn with light widgets: each looks, cell for cell, as the full widget it
stands for, and becomes that widget when used (a click, Enter, the pointer, focus). The first
paint's path loads neither pydantic nor LangChain."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widget import Widget
from textual.widgets import Button, Collapsible

from agent.transcript import replay as replay_module
from agent.transcript.replay import JobState
from agent.tui.app import FalPersonaApp
from agent.tui.chat import AnswerMessage
from agent.tui.jobs import JobRow, LightFoot
from agent.tui.keys import DEFAULT_KEYS
from agent.tui.resume import ReplayedAnswer, answer_widget, job_rows, plain_answer
from agent.tui.toolcard import LightTitle, ToolCard

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(160, 48), (80, 24)]


async def _never(settings: Any, persona: Any) -> Any:
    await asyncio.Event().wait()  # no runtime: the screen holds only what a test mounts


def _app() -> FalPersonaApp:
    return FalPersonaApp(runtime_factory=_never, settings=object(), keys=dict(DEFAULT_KEYS),
                         clock=lambda: 100.0, resume=True)


async def _drawn(app: FalPersonaApp) -> None:
    done = asyncio.Event()
    app.call_after_refresh(done.set)
    await asyncio.wait_for(done.wait(), 5)


def _cells(app: FalPersonaApp, widget: Widget) -> list[list[tuple[str, str]]]:
    """The screen's cells over `widget`'s region: (character, style); a blank keeps only its
    background (its foreground and boldness show nothing)."""
    region = widget.region
    assert region.area, f"{widget!r} is not on screen"
    out = []
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        if not region.y <= y < region.bottom:
            continue
        line = [(ch, str(seg.style or "")) for seg in strip for ch in seg.text][region.x:region.right]
        out.append([(ch, ("on " + m.group(1)) if ch == " " and (m := re.search(r"on (\S+)", st)) else
                     ("" if ch == " " else st)) for ch, st in line])
    return out


async def _look(app: FalPersonaApp, where: Widget, widget: Widget) -> list[list[tuple[str, str]]]:
    """How `widget` looks mounted alone at the end of `where` (removed again afterwards)."""
    await where.mount(widget)
    await _drawn(app)
    await _drawn(app)  # a Markdown widget mounts its blocks after its own mount
    cells = _cells(app, widget)
    await widget.remove()
    return cells


def _card(light: bool, *, kind: str = "read", error: bool = False) -> ToolCard:
    card = ToolCard("call_1", "search_models", {"query": "flux [dev] <x>", "limit": 3}, kind, light=light)
    card.finish("✗ not found" if error else "result 1\nmore", {"models": [{"endpoint_id": "fal-ai/flux/dev"}]},
                error, 0.25)
    return card


def _row(state: JobState, light: bool) -> JobRow:
    row = job_rows({state.request_id: state}, clock=100.0)[0]
    row.light = light
    return row


JOB_STATES = [
    JobState("00000001-0000-4000-8000-000000000000", "fal-ai/flux/schnell", "COMPLETED", outcome="completed",
             result={"images": [{"url": "https://example.test/a.png", "content_type": "image/png"}]}),
    JobState("00000002-0000-4000-8000-000000000000", "fal-ai/flux/dev", "ERROR", outcome="failed",
             note="422: prompt is required"),
    JobState("00000003-0000-4000-8000-000000000000", "fal-ai/kling-video/v2/master/text-to-video", "CANCELLED",
             outcome="cancelled", note="cancelled before it ran"),
    JobState("00000004-0000-4000-8000-000000000000", "fal-ai/flux/schnell", "COMPLETED", outcome="completed",
             result={"seed": 7}, note="done"),
]

PLAIN = [
    "Answer 12: " + "text " * 40 + "end.",
    "Done. The fox is ready, and it cost (about) 3 cents!",
    "First line\nsecond line, wrapped when long: " + "words " * 30,
    "One paragraph.\n\nAnother paragraph, after a gap.",
]


@pytest.mark.parametrize("size", SIZES)
async def test_light_tool_cards_look_as_the_full_ones(size):
    app = _app()
    async with app.run_test(size=size):
        await _drawn(app)
        for kind, error in (("read", False), ("spend", False), ("destructive", True)):
            full = await _look(app, app.chat, _card(False, kind=kind, error=error))
            light = await _look(app, app.chat, _card(True, kind=kind, error=error))
            assert light == full, (kind, error)
            assert any("search_models" in "".join(c for c, _ in line) for line in light)


@pytest.mark.parametrize("size", SIZES)
async def test_light_job_rows_look_as_the_full_ones(size):
    app = _app()
    async with app.run_test(size=size):
        await _drawn(app)
        for state in JOB_STATES:
            full = await _look(app, app.jobs, _row(state, light=False))
            light_row = _row(state, light=True)
            light = await _look(app, app.jobs, light_row)
            assert light == full, state.outcome
            # drawn, not built, when it has a result; else (disabled buttons) the full row
            assert light_row.drawn_light() is (state.result is not None), state.outcome


async def test_plain_replayed_answers_look_as_the_markdown_ones():
    app = _app()
    async with app.run_test(size=(120, 40)):
        await _drawn(app)
        for text in PLAIN:
            assert plain_answer(text), text
            full = await _look(app, app.chat, AnswerMessage(text))
            light = await _look(app, app.chat, ReplayedAnswer(text))
            assert light == full, text


@pytest.mark.parametrize("text, plain", [
    ("Answer 1: text text text", True),
    ("Hello world. Next one!", True),
    ("see fal.ai for more", False),      # a link to Markdown
    ("two  spaces", False),              # folded by Markdown
    ("1. a list", False),
    ("- a list", False),
    ("**bold** and `code`", False),
    ("a_b", False),
    ("it took 0.5 s", False),
    ("http://localhost:8000", False),
    ("a\n\n\nb", False),                 # Markdown keeps one gap
    (" leading", False),
    ("", False),
])
def test_plain_answer(text, plain):
    assert plain_answer(text) is plain
    assert isinstance(answer_widget(text), ReplayedAnswer if plain else AnswerMessage)


async def test_a_light_card_is_built_on_hover_and_unfolds_on_click_and_on_enter():
    app = _app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _drawn(app)
        clicked, keyed, hovered = _card(True), _card(True), _card(True)
        await app.chat.mount_all([clicked, keyed, hovered])
        await _drawn(app)
        await pilot.hover(hovered.query_one(LightTitle))  # built, still folded: the real hover look
        await _wait(pilot, lambda: hovered.query(Collapsible), "the hovered card to be built")
        assert hovered.query_one(Collapsible).collapsed and not hovered.query(LightTitle)
        await pilot.click(clicked.query_one(LightTitle))
        await _wait(pilot, lambda: clicked.query(Collapsible) and not clicked.query_one(Collapsible).collapsed,
                    "the clicked card to unfold")
        assert not clicked.light and not clicked.query(LightTitle)
        assert '"fal-ai/flux/dev"' in str(clicked.query_one(".json").render())  # its JSON is shown
        keyed.query_one(LightTitle).focus()  # (Tab to it) built, and the real title has the focus
        await _wait(pilot, lambda: keyed.query(Collapsible) and app.focused is keyed.query_one("CollapsibleTitle"),
                    "the focused card to be built")
        assert keyed.query_one(Collapsible).collapsed
        await pilot.press("enter")
        await _wait(pilot, lambda: keyed.query(Collapsible) and not keyed.query_one(Collapsible).collapsed,
                    "the card to unfold on Enter")
        assert app.focused is keyed.query_one("CollapsibleTitle")  # the focus stays on its title


async def test_a_light_job_row_becomes_the_full_row_when_used(monkeypatch):
    pressed: list[tuple[str, bool]] = []

    async def save_and_report(row: Any, save: Any, *, open_after: bool = False) -> None:
        pressed.append((row.request_id, open_after))

    monkeypatch.setattr("agent.tui.media_view.save_and_report", save_and_report)
    app = _app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _drawn(app)
        rows = job_rows({s.request_id: s for s in (JOB_STATES[0], JOB_STATES[3])}, clock=100.0)
        await app.jobs.restore(rows)
        await _drawn(app)
        done, other = rows
        assert done.query(LightFoot) and other.query(LightFoot)
        # a click on the drawn Open button: the row is built and its real Open is pressed
        foot = done.query_one(LightFoot)
        await pilot.click(foot, offset=(18, 2))
        await _wait(pilot, lambda: pressed, "the Open press")
        assert pressed == [(done.request_id, True)] and not done.query(LightFoot)
        assert app.focused is done.query_one("#open", Button)
        # the pointer over a row builds it (its buttons' hover is the real one)
        await pilot.hover(other.query_one(LightFoot))
        await _wait(pilot, lambda: not other.query(LightFoot), "the hovered row to be built")
        assert not other.query_one("#save", Button).disabled
        await pilot.click(other.query_one("#save", Button))
        await _wait(pilot, lambda: len(pressed) == 2, "the Save press")
        assert pressed[1] == (other.request_id, False)


async def test_a_light_job_row_follows_its_state():
    app = _app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _drawn(app)
        row = _row(JOB_STATES[0], light=True)
        await app.jobs.restore([row])
        await _drawn(app)
        row.note("a later note")
        await _drawn(app)
        assert "a later note" in "".join(c for line in _cells(app, row) for c, _ in line)
        assert row.query(LightFoot)
        row.done, row.total = 0.5, 1.0  # a partial progress is not drawn light: the full row
        row.note("half way")
        await _wait(pilot, lambda: not row.query(LightFoot) and row.query(Button), "the full row")
        assert str(row.query_one(".job-pct").render()).strip() == "50%"


def test_replays_tool_facts_are_the_registrys():
    from tools import registry

    assert replay_module.JOB_TOOLS == registry.JOB_TOOLS
    assert replay_module.MEDIA_TOOLS == registry.MEDIA_TOOLS
    assert (replay_module.SUBMIT, replay_module.CANCEL, replay_module.RESULT) == \
        (registry.SUBMIT, registry.CANCEL, registry.RESULT)


def test_the_gates_money_is_the_light_modules():
    from agent.core import gate
    from agent.core.money import money

    assert gate.money is money  # one formatter: the header's (first paint) and the gate's
    assert [money(v) for v in (None, 0, 0.003, 0.0251, 1.5, -0.004)] == \
        ["unknown", "$0.00", "$0.003", "$0.0251", "$1.50", "-$0.004"]


FIRST_PAINT = r"""
import json, os, sys
import agent.tui.resume as resume
from agent.tui.app import FalPersonaApp
painting = resume.paint_replay
async def painted(app, rebuilt):
    await painting(app, rebuilt)
    def report():
        loaded = [m for m in ("pydantic", "langchain_core", "langchain", "tools.registry") if m in sys.modules]
        os.write(1, json.dumps({"loaded": loaded, "messages": len(app.chat.messages)}).encode() + b"\n")
        app.exit()
    app.call_after_refresh(report)
resume.paint_replay = painted
async def never(settings, persona):
    import asyncio
    await asyncio.Event().wait()
FalPersonaApp(resume=True, runtime_factory=never).run(headless=True, size=(160, 48))
"""


def test_the_first_paint_of_a_reopened_chat_loads_no_pydantic_and_no_langchain(tmp_path):
    from agent.transcript.store import TranscriptStore

    home = tmp_path / "home"
    store = TranscriptStore(home / "transcript.sqlite3")
    sid = store.new_session("ana", "producer")
    who = {"user": "ana", "persona": "producer"}
    for i in range(30):
        call = {"id": f"c{i}", "name": "submit_queue_request",
                "args": {"endpoint_id": "fal-ai/flux/schnell", "arguments": {"prompt": f"fox {i}"}}}
        store.record(sid, "user_prompt", {"text": f"a fox {i}"}, **who)
        store.record(sid, "model_response", {"role": "ai", "content": "", "tool_calls": [call]}, **who)
        store.record(sid, "tool_call", {"call_id": f"c{i}", "name": call["name"], "args": call["args"],
                                        "kind": "spend"}, **who)
        store.record(sid, "tool_result", {"call_id": f"c{i}", "name": call["name"], "content": "queued",
                                          "artifact": {"request_id": f"{i:08d}-0000-4000-8000-000000000000",
                                                       "status": "IN_QUEUE"}}, **who)
        store.record(sid, "job_state", {"request_id": f"{i:08d}-0000-4000-8000-000000000000",
                                        "endpoint_id": "fal-ai/flux/schnell", "outcome": "completed",
                                        "summary": "done", "result": {"seed": i}}, **who)
        store.record(sid, "answer", {"text": f"Your fox {i} is queued."}, **who)
    store.close()
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "OPENAI_API_KEY")}
    env.update(FAL_PERSONA_HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", FIRST_PAINT], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    report = json.loads(lines[-1])
    assert report["messages"] > 0
    assert report["loaded"] == [], report


async def _wait(pilot: Any, condition: Any, what: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.02)
