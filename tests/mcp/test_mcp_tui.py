"""The TUI on a real runtime whose persona has MCP servers: their state in the header, a chat
notice when one dies mid-session, and a persona switch that takes them along."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import scribe_persona

from agent.core.events import Decision
from agent.tui.chat import AnswerMessage, NoticeMessage
from agent.tui.header import StatusHeader
from agent.tui.mcp_status import header_label, short_label
from tests.tui.conftest import make_app, send, wait_for

pytestmark = pytest.mark.timeout(180)
WAIT = 60.0


def real_runtime(settings, persona):
    from agent.core.runtime import build_runtime
    from agent.settings import Settings

    return build_runtime(Settings().model_copy(update={"listen": False}), persona, source="tui")


def _notices(app) -> list[str]:
    return [str(w.content) for w in app.query(NoticeMessage)]


async def _approve(request):
    return Decision(action="approve")


def test_labels_and_the_narrow_header():
    hub = SimpleNamespace(status=lambda: {"notes": "up", "ghost": "failed", "tracker": "dead"})
    label = header_label(SimpleNamespace(mcp=hub))
    assert label == "notes ✓ ghost ✗ tracker ✗" and short_label(label) == "1/3 up"
    assert header_label(SimpleNamespace(mcp=None)) == "" and short_label("") == ""
    header = StatusHeader()
    header.persona, header.model, header.mode, header.mcp = "scribe", "offline-planner", "sandbox", label
    full = "".join(t for t, _ in header._variants()[0])
    assert full.endswith(" · mcp notes ✓ ghost ✗ tracker ✗")
    assert any(" · mcp 1/3 up" in "".join(t for t, _ in v) for v in header._variants())
    header.mcp = ""
    assert not any("mcp" in "".join(t for t, _ in v) for v in header._variants())


async def test_header_shows_the_servers_and_a_death_is_a_chat_notice(home, tmp_path):
    scribe_persona(home, tmp_path / "notes.txt", extra_servers=f'''
[[mcp_servers]]
name = "ghost"
command = "{tmp_path / 'no-such-server'}"
''')
    app = make_app(real_runtime, persona="scribe", settings=SimpleNamespace(uses_offline_planner=True))
    app.approve = _approve
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready.is_set() and app.runtime is not None, timeout=WAIT, what="runtime")
        assert app.header.mcp == "notes ✓ ghost ✗"
        assert any(n.startswith("MCP server ghost did not start") for n in _notices(app))  # once, at start
        await send(pilot, "notes_crash")
        await wait_for(pilot, lambda: any(n.startswith("MCP server notes stopped") for n in _notices(app)),
                       timeout=WAIT, what="the death notice")
        await wait_for(pilot, lambda: app.header.mcp == "notes ✗ ghost ✗", timeout=WAIT, what="the header")
        assert sum(n.startswith("MCP server ghost did not start") for n in _notices(app)) == 1
        # The chat goes on: a fal tool still answers.
        await wait_for(pilot, lambda: app.turn_worker is not None and app.turn_worker.is_finished,
                       timeout=WAIT, what="the crashed turn")
        crashed = app.turn_worker
        await send(pilot, "search flux")
        await wait_for(pilot, lambda: app.turn_worker is not crashed and app.turn_worker.is_finished,
                       timeout=WAIT, what="the search turn")
        assert any("fal-ai/flux" in a.text for a in app.query(AnswerMessage))
        assert app.runtime.mcp.status()["notes"] == "dead"


async def test_a_persona_switch_in_the_tui_starts_and_stops_servers(home, tmp_path):
    scribe_persona(home, tmp_path / "notes.txt", extra_servers=f'''
[[mcp_servers]]
name = "ghost"
command = "{tmp_path / 'no-such-server'}"
''')
    app = make_app(real_runtime, persona="analyst", settings=SimpleNamespace(uses_offline_planner=True))
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready.is_set() and app.runtime is not None, timeout=WAIT, what="runtime")
        await wait_for(pilot, lambda: bool(app.personas), timeout=WAIT, what="personas")
        assert app.header.mcp == "" and app.runtime.mcp is None
        await app.switch_persona("scribe")
        await wait_for(pilot, lambda: app.header.mcp == "notes ✓ ghost ✗", timeout=WAIT, what="scribe's servers")
        # What did not start is said in the chat (it was not in the runtime's start notices).
        await wait_for(pilot, lambda: any(n.startswith("MCP server ghost did not start") for n in _notices(app)),
                       timeout=WAIT, what="the start notice")
        hub = app.runtime.mcp
        await app.switch_persona("analyst")
        await wait_for(pilot, lambda: app.header.mcp == "", timeout=WAIT, what="no servers")
        assert hub.status() == {"notes": "closed", "ghost": "failed"} and app.runtime.mcp is None
