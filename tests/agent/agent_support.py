"""Fixtures for the runner tests (tests/agent/conftest.py hands them to pytest) and the `Approver` helper."""

from __future__ import annotations

import pytest
from agent_fakes import FakeFal, build_fake_tools

from agent.core.events import Decision
from agent.personas import load_personas
from agent.transcript.store import TranscriptStore


@pytest.fixture
def fal() -> FakeFal:
    return FakeFal()


@pytest.fixture
def fake_tools(fal):
    return build_fake_tools(fal)


@pytest.fixture
def personas():
    return load_personas()


@pytest.fixture
def transcript(tmp_path):
    store = TranscriptStore(tmp_path / "t.sqlite3")
    yield store
    store.close()


class Approver:
    """Answers every approval with `decision` and remembers the requests."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.requests = []

    async def __call__(self, request):
        self.requests.append(request)
        return self.decision


@pytest.fixture
def approve():
    return Approver(Decision(action="approve"))


@pytest.fixture
def reject():
    return Approver(Decision(action="reject", reason="too pricey"))
