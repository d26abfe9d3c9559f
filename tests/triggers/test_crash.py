"""kill -9 the listener under load: every delivery that got a 2xx must be in the inbox."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import httpx
import pytest

from agent import locations
from agent.triggers.inbox import Inbox
from tests.triggers.support import (
    JwksHttpServer,
    Signer,
    fal_body,
    start_listener_process,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


@pytest.mark.parametrize("workers", [1, 2])
async def test_kill_9_under_load_loses_no_acknowledged_event(workers):
    signer = Signer()
    jwks = JwksHttpServer(signer)
    env = {**os.environ, "FAL_JWKS_URL": jwks.url}
    proc, url = start_listener_process(env, workers=workers)
    acked: set[str] = set()
    failed = 0
    enough = asyncio.Event()
    try:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
            async def send(i: int) -> None:
                nonlocal failed
                rid = f"crash-{i}"
                body = fal_body(rid)
                try:
                    response = await client.post("/webhooks/fal", content=body,
                                                 headers=signer.headers(body, rid))
                except httpx.HTTPError:
                    failed += 1
                    return
                if 200 <= response.status_code < 300:
                    acked.add(rid)
                    if len(acked) >= 300:
                        enough.set()
                else:
                    failed += 1

            async def killer() -> None:
                await asyncio.wait_for(enough.wait(), timeout=60)
                os.killpg(proc.pid, signal.SIGKILL)  # every worker process dies at once

            queue = iter(range(20_000))

            async def lane() -> None:
                for i in queue:
                    if proc.poll() is not None and enough.is_set():
                        return
                    await send(i)

            await asyncio.gather(killer(), *(lane() for _ in range(32)))
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        jwks.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300
    assert failed > 0, "the kill did not land mid-load"
    inbox = Inbox(locations.inbox_db())
    try:
        stored = {row.request_id for row in inbox.list(limit=100_000)}
    finally:
        inbox.close()
    lost = acked - stored
    assert not lost, f"{len(lost)} acknowledged events missing, e.g. {sorted(lost)[:5]}"
