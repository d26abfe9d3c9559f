"""The clock: manual mode only moves on advance(); waiters wake on advance, from any thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sandbox.clock import Clock


def test_manual_clock_stands_still_until_advanced():
    clock = Clock(manual=True, start=1000.0)
    assert clock.now() == 1000.0
    assert clock.advance(2.5) == 1002.5
    assert clock.now() == 1002.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_speed_change_does_not_jump():
    clock = Clock(manual=True, start=50.0)
    clock.set_speed(1000.0)
    assert clock.now() >= 50.0
    clock.set_manual()
    frozen = clock.now()
    assert clock.now() == frozen
    with pytest.raises(ValueError):
        clock.set_speed(0)


async def test_waiter_wakes_on_advance_in_same_loop():
    clock = Clock(manual=True, start=0.0)
    task = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(4)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(6)
    await asyncio.wait_for(task, 5)
    assert clock.now() == 10


async def test_waiter_wakes_on_advance_from_other_thread():
    clock = Clock(manual=True, start=0.0)
    task = asyncio.create_task(clock.sleep(3))
    await asyncio.sleep(0)
    thread = threading.Thread(target=clock.advance, args=(3,))
    thread.start()
    await asyncio.wait_for(task, 5)
    thread.join()
    assert task.done() and clock.now() == 3
