"""`webhooks serve --workers 2`: two processes on one port store each event once and act once."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import signal
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from agent import locations
from agent.triggers.inbox import Inbox
from agent.triggers.listener import build_listener
from agent.triggers.rules import load_rules
from tests.triggers.support import (
    JwksHttpServer,
    Signer,
    fal_body,
    start_listener_process,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="forks worker processes")

ENDPOINT = "fal-ai/flux/dev"


class CountingFal:
    """A loopback stand-in for fal's queue: counts each result fetch by path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        hits, lock = self.hits, threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    hits[self.path] += 1
                data = json.dumps({"images": [], "seed": 1}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _write_rule() -> None:
    locations.triggers_file().parent.mkdir(parents=True, exist_ok=True)
    locations.triggers_file().write_text("""
[[triggers]]
name = "fetch-result"
endpoint = "fal-ai/flux/*"
status = "OK"
tool = "get_queue_result"
""")


async def _post(url: str, signer: Signer, rid: str) -> httpx.Response:
    """One delivery on its own connection, so the kernel can hand it to either worker."""
    body = fal_body(rid)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{url}/webhooks/fal?endpoint_id={ENDPOINT}", content=body,
                                 headers=signer.headers(body, rid))


async def _pids(url: str, tries: int = 24) -> dict[int, int]:
    """pid -> events it stored, from /healthz over fresh connections."""
    seen: dict[int, int] = {}
    for _ in range(tries):
        async with httpx.AsyncClient(timeout=10) as client:
            health = (await client.get(f"{url}/healthz")).json()
        seen[health["pid"]] = health["received"]
    return seen


async def test_two_workers_store_each_event_once_and_run_its_rule_once():
    _write_rule()
    signer, fal = Signer(), CountingFal()
    jwks = JwksHttpServer(signer)
    env = {**os.environ, "FAL_JWKS_URL": jwks.url, "FAL_QUEUE_BASE_URL": fal.url,
           "FAL_KEY": "test-key:test-secret", "FAL_PERSONA_NO_LOG": "1"}
    proc, url = start_listener_process(env, workers=2)
    ids = [f"multi-{i:03d}" for i in range(40)]
    try:
        first = await asyncio.gather(*(_post(url, signer, rid) for rid in ids))
        assert [r.status_code for r in first] == [200] * len(ids)
        assert all(r.json() == {"received": True} for r in first)
        # Both processes answered, and between them they stored each event exactly once.
        stored_by = await _pids(url)
        assert len(stored_by) == 2, f"one worker took every connection: {stored_by}"
        assert sum(stored_by.values()) == len(ids)

        # Worker 0 alone runs the rules, for the events either worker stored: the sibling
        # wakes it through the pipe, so this finishes well before its 30 s idle poll.
        inbox = Inbox(locations.inbox_db())
        deadline = time.monotonic() + 20
        try:
            while True:
                rows = {row.request_id: row for row in inbox.list(limit=1000)}
                if len(rows) == len(ids) and all(r.state == "done" for r in rows.values()):
                    break
                assert time.monotonic() < deadline, Counter(r.state for r in rows.values())
                await asyncio.sleep(0.1)
            assert all(r.attempts == 1 and "fetch-result: get_queue_result ok" in (r.outcome or "")
                       for r in rows.values()), [r.summary() for r in rows.values()][:3]
        finally:
            inbox.close()
        fetched = {rid: n for path, n in fal.hits.items() for rid in ids if path.endswith(f"/requests/{rid}")}
        assert fetched == {rid: 1 for rid in ids}

        # One at a time now, with worker 0 idle: those landing on the other worker must still
        # run promptly (8 fresh connections all hashing to worker 0 has odds of 1 in 256).
        inbox = Inbox(locations.inbox_db())
        try:
            for rid in (f"single-{i}" for i in range(8)):
                assert (await _post(url, signer, rid)).json() == {"received": True}
                deadline = time.monotonic() + 10
                while (row := inbox.get(rid)) is None or row.state != "done":
                    assert time.monotonic() < deadline, f"{rid} waited for the idle poll: {row}"
                    await asyncio.sleep(0.05)
                ids.append(rid)
        finally:
            inbox.close()

        # Redeliveries, spread over both workers again: 200 duplicate, nothing runs again.
        again = await asyncio.gather(*(_post(url, signer, rid) for rid in ids))
        assert all(r.status_code == 200 and r.json() == {"duplicate": True} for r in again)
        await asyncio.sleep(0.5)  # give a wrongly woken worker the chance to act (it must not)
        assert sum(fal.hits.values()) == len(ids)
        assert sum((await _pids(url)).values()) == len(ids)
    finally:
        proc.terminate()  # the parent passes it on to both workers
        try:
            code = proc.wait(timeout=20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            jwks.close()
            fal.close()
    assert code == 0, proc.stderr.read()[-2000:]  # type: ignore[union-attr]  # stderr=PIPE


def test_a_secondary_worker_stores_pending_and_runs_no_actions_or_schedules(tmp_path):
    _write_rule()
    locations.triggers_file().write_text(locations.triggers_file().read_text() + """
[[schedules]]
name = "every-minute"
cron = "* * * * *"
tool = "get_pricing"
""")
    primary = build_listener(jwks_url="http://127.0.0.1:9/jwks", inbox=Inbox(tmp_path / "a.db"))
    secondary = build_listener(jwks_url="http://127.0.0.1:9/jwks", inbox=Inbox(tmp_path / "b.db"),
                               actions=False)
    assert len(load_rules()) == 1
    assert len(primary.state.background) == 2 and primary.state.on_stored is not None
    # Same rules, so its events wait for worker 0 rather than being stored settled...
    assert secondary.state.background == [] and secondary.state.on_stored is None
    assert secondary.state.intake.settled_as is None and primary.state.intake.settled_as is None


def test_shared_writers_queue_on_the_write_flock(tmp_path):
    import fcntl

    from agent.triggers.inbox import NewEvent

    path = tmp_path / "inbox.sqlite3"
    first, second = Inbox(path, shared_writers=True), Inbox(path, shared_writers=True)

    def event(rid: str) -> NewEvent:
        return NewEvent(request_id=rid, received_at=1.0, status="OK", body=b"{}", user_id="u", endpoint_id=None)

    assert first.add_many([event("a")]) == [True]  # opens the database and its lock file
    holder = os.open(f"{path}.writelock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as another worker mid-commit would
    done = threading.Event()
    results: list[list[bool]] = []
    thread = threading.Thread(target=lambda: (results.append(second.add_many([event("a"), event("b")])),
                                              done.set()))
    try:
        thread.start()
        assert not done.wait(0.3), "stored without waiting for the other writer"
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert done.wait(10)
    thread.join()
    assert results == [[False, True]]
    assert first.count() == 2
    first.close()
    second.close()
