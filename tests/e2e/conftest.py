"""Fixtures: the sandbox on a loopback uvicorn thread or mounted in-process, tools built on it.

Both sandboxes run on a manual clock, so nothing happens until a test moves time: lifecycle
tests never sleep, and what a tool sees depends only on the steps the test takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from e2e_support import LOCKED_KEY_ID, Harness, WebhookReceiver

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread


def sandbox_config() -> SandboxConfig:
    """Manual clock, one runner per key (so queue positions are visible), one locked key."""
    return SandboxConfig(manual_clock=True, concurrency_limit=1, queue_delay_s=0.5,
                         locked_key_ids=frozenset({LOCKED_KEY_ID}), sse_ping_interval_s=5.0)


@pytest.fixture
def running_sandbox() -> Iterator[RunningSandbox]:
    """A real server on 127.0.0.1, an OS-chosen port, stopped after the test."""
    sb = start_in_thread(host="127.0.0.1", port=0, config=sandbox_config())
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
async def loopback(running_sandbox: RunningSandbox) -> AsyncIterator[Harness]:
    """Tools talk TCP to the threaded sandbox; the clock moves from a worker thread."""

    async def advance(seconds: float) -> None:
        # sb.advance blocks until the sandbox loop has applied the move and finished the
        # webhook attempts it triggered; run it off this loop so streams keep flowing here.
        await asyncio.to_thread(running_sandbox.advance, seconds)

    harness = Harness("loopback", running_sandbox.url, running_sandbox.state, advance,
                      httpx.AsyncHTTPTransport)
    yield harness
    await harness.aclose()


@pytest.fixture
async def inprocess() -> AsyncIterator[Harness]:
    """Tools talk to the sandbox app in-process through httpx.ASGITransport."""
    app = create_app(sandbox_config())
    state = app.state.sandbox
    harness = Harness("asgi", "http://sandbox.test", state, state.advance,
                      lambda: httpx.ASGITransport(app=app))
    yield harness
    await harness.aclose()
    await state.aclose()


@pytest.fixture(params=["loopback", "asgi"])
def sandbox(request: pytest.FixtureRequest) -> Harness:
    """Either way of running the sandbox (the test runs once for each)."""
    return request.getfixturevalue("loopback" if request.param == "loopback" else "inprocess")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A loopback webhook receiver on its own thread."""
    rx = WebhookReceiver()
    try:
        yield rx
    finally:
        rx.close()
