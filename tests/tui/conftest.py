"""Shared helpers for the TUI tests: an app on the fake runtime, and bounded waiting."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from agent.tui.app import FalPersonaApp
from agent.tui.keys import DEFAULT_KEYS
from tests.tui.fakes import FakeFactory


def make_app(factory: FakeFactory | None = None, **kw) -> FalPersonaApp:
    """The app wired to the fake runtime, with fixed keys and a frozen clock."""
    kw.setdefault("keys", dict(DEFAULT_KEYS))
    kw.setdefault("clock", lambda: 100.0)
    kw.setdefault("settings", SimpleNamespace(uses_offline_planner=True))
    return FalPersonaApp(runtime_factory=factory or FakeFactory(), **kw)


async def wait_for(pilot, condition, timeout: float = 5.0, what: str = "condition") -> None:
    """Let the app run until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def send(pilot, text: str) -> None:
    """Type `text` into the prompt and press Enter."""
    prompt = pilot.app.query_one("#prompt")
    prompt.focus()
    prompt.text = text
    await pilot.press("enter")


@pytest.fixture
def factory() -> FakeFactory:
    return FakeFactory()
