"""Run the tools' coroutines from synchronous code, from any thread, safely.

Sync tool calls all go to one background event loop (a daemon thread started on first use),
so the client's per-loop connection pool is reused across calls instead of being rebuilt by
``asyncio.run`` each time, and a sync call made while another loop is running in the calling
thread does not trip over it. The caller's ``contextvars`` travel with the coroutine, so
LangChain's run config (callbacks, stream writer) is visible inside it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "run_sync"]


_T = TypeVar("_T")


class LoopThread:
    """A lazily started event loop in a daemon thread."""

    def __init__(self, name: str = "fal-tools-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` to completion on the background loop and return its result."""
        ctx = contextvars.copy_context()
        if threading.current_thread() is self._thread:
            # Called from inside the loop thread itself: blocking it would deadlock.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(ctx.run, asyncio.run, coro).result()
        loop = self._ensure()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()
        holder: list[asyncio.Task[_T]] = []

        def start() -> None:
            task = loop.create_task(coro, context=ctx)
            holder.append(task)
            task.add_done_callback(lambda t: _settle(t, done))

        loop.call_soon_threadsafe(start)
        try:
            return done.result()
        except BaseException:
            if not done.done() and holder:
                loop.call_soon_threadsafe(holder[0].cancel)
            raise


def _settle(task: asyncio.Task[_T], done: concurrent.futures.Future[_T]) -> None:
    if task.cancelled():
        done.cancel()
    elif (exc := task.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


_DEFAULT = LoopThread()


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from sync code on the shared background loop."""
    return _DEFAULT.run(coro)
