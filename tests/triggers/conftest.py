"""Fixtures for the trigger tests (helpers live in support.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent.triggers.inbox import Inbox
from agent.triggers.listener import build_listener
from tests.triggers.support import JwksServer, Signer


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def jwks_server(signer: Signer) -> JwksServer:
    return JwksServer(signer)


@pytest.fixture
def inbox(tmp_path) -> Inbox:
    box = Inbox(tmp_path / "inbox.sqlite3")
    yield box
    box.close()


@pytest.fixture
def check() -> str:
    """Where the listener verifies and stores (a module may parametrize this over the modes)."""
    return "thread"


@pytest.fixture
def make_listener(jwks_server: JwksServer, inbox: Inbox, check: str):
    """Build a listener app with no rules (unless given) and a client for it over ASGITransport."""
    made = []

    def make(**kwargs: Any):
        kwargs.setdefault("rules", [])
        kwargs.setdefault("schedules", [])
        kwargs.setdefault("transcript", None)
        kwargs.setdefault("check", check)
        listener = build_listener(jwks=kwargs.pop("jwks", None) or jwks_server.cache(),
                                  inbox=inbox, **kwargs)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app),
                                   base_url="http://listener.test")
        made.append(listener)
        return listener, client

    yield make
    for listener in made:  # ASGITransport runs no lifespan: stop the checker process here
        if listener.state.intake is not None:
            listener.state.intake.close()
