"""One scheduler per data dir: two schedulers sharing a lease file never both run schedules."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from agent.triggers.actions import ActionExecutor
from agent.triggers.lease import Lease
from agent.triggers.notices import Subscribers
from agent.triggers.schedules import Scheduler, parse_schedules

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lease is a POSIX file lock")


class Rec:
    def new_session(self, user, persona, source="tui"):
        return "s"

    def record(self, sid, kind, data, *, user, persona, duration_s=None, ref=None):
        pass


def _scheduler(lease_path, ran: list[str], who: str, subscribers=None) -> Scheduler:
    async def runner(persona, text, approve):
        ran.append(who)
        return "ok"

    # Every second, so both would run it at once without the lease.
    schedules = parse_schedules([{"name": "tick", "cron": "* * * * *",
                                  "prompt": "hello"}], source="t", persona="analyst")
    s = Scheduler(schedules, ActionExecutor(prompt_runner=runner, transcript=Rec()), lease_path=lease_path,
                  lease_retry_s=0.05, subscribers=subscribers)
    s.next_runs = {"tick": 0.0}  # due now
    return s


async def _until(condition, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_only_the_lease_holder_runs_schedules_and_the_other_takes_over(tmp_path):
    lease = tmp_path / "scheduler.lock"
    ran: list[str] = []
    notices = []
    subs = Subscribers()
    subs.subscribe(notices.append)
    first, second = _scheduler(lease, ran, "first"), _scheduler(lease, ran, "second", subs)
    stop1, stop2 = asyncio.Event(), asyncio.Event()
    t1 = asyncio.create_task(first.run(stop1))
    await _until(lambda: ran == ["first"], "first run")
    t2 = asyncio.create_task(second.run(stop2))
    await _until(lambda: second.waiting_for is not None, "second waiting")
    assert ran == ["first"]
    assert any("another process" in n.detail for n in notices)
    stop1.set()
    await asyncio.wait_for(t1, 5)
    await _until(lambda: "second" in ran, "second takes over")
    assert ran == ["first", "second"]
    stop2.set()
    await asyncio.wait_for(t2, 5)
    assert not first.lease.held and not second.lease.held


def test_a_dead_holder_leaves_no_stale_lease(tmp_path):
    path = tmp_path / "scheduler.lock"
    code = ("import sys, time; from pathlib import Path; from agent.triggers.lease import Lease; "
            f"l = Lease(Path({str(path)!r})); assert l.acquire(); print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        mine = Lease(path)
        assert not mine.acquire() and mine.holder() == str(child.pid)
        child.kill()
        child.wait(10)
        assert mine.acquire()
    finally:
        if child.poll() is None:
            child.kill()
