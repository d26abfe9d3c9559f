"""Fixtures: a sandbox app on a manual clock, and an httpx client mounted on it in-process."""

from __future__ import annotations

import httpx
import pytest

from sandbox.app import create_app
from sandbox.config import SandboxConfig

KEY = {"Authorization": "Key test-key:test-secret"}


def make_app(**overrides):
    """A sandbox whose clock only moves when the test says so."""
    options = {"manual_clock": True, "queue_delay_s": 0.5}
    options.update(overrides)
    return create_app(SandboxConfig(**options))


@pytest.fixture
def app():
    return make_app()


@pytest.fixture
def state(app):
    return app.state.sandbox


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=KEY) as c:
        yield c
    await app.state.sandbox.aclose()


async def submit(client, endpoint="fal-ai/flux/dev", body=None, **kwargs):
    """Submit and return the JSON reply (asserting 200)."""
    r = await client.post(f"/{endpoint}", json={"prompt": "a red fox"} if body is None else body, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()
