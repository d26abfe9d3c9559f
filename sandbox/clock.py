"""The sandbox clock: real time scaled by a speed factor, or a manual clock tests move by hand."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time


class Clock:
    """Sandbox time as Unix epoch seconds.

    In speed mode, sandbox time runs at `speed` x real time. In manual mode it stands still until
    `advance()` moves it, so lifecycle tests never sleep for real. Every change (advance, speed,
    `poke()`) wakes the coroutines parked in `wait()`, on whichever event loop they run: the
    clock may be moved from a test thread while the server loop runs in another.
    """

    def __init__(self, *, speed: float = 1.0, manual: bool = False, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._lock = threading.Lock()
        self._epoch0 = time.time() if start is None else float(start)
        self._offset = 0.0
        self._real_base = time.monotonic()
        self._speed = float(speed)
        self._manual = manual
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def manual(self) -> bool:
        """True when time only moves through advance()."""
        return self._manual

    @property
    def speed(self) -> float:
        """The current speed-up factor (ignored in manual mode)."""
        return self._speed

    def now(self) -> float:
        """Current sandbox time (epoch seconds)."""
        if self._manual:
            return self._epoch0 + self._offset
        return self._epoch0 + self._offset + (time.monotonic() - self._real_base) * self._speed

    def _rebase(self) -> None:
        # Fold elapsed real time into the offset so speed/mode changes don't jump the clock.
        real = time.monotonic()
        if not self._manual:
            self._offset += (real - self._real_base) * self._speed
        self._real_base = real

    def advance(self, seconds: float) -> float:
        """Move sandbox time forward (works in both modes); returns the new time."""
        if seconds < 0:
            raise ValueError("the clock cannot go backwards")
        with self._lock:
            self._rebase()
            self._offset += seconds
        self._notify()
        return self.now()

    def set_speed(self, speed: float) -> None:
        """Switch to speed mode at the given factor."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        with self._lock:
            self._rebase()
            self._speed = float(speed)
            self._manual = False
        self._notify()

    def set_manual(self) -> None:
        """Freeze the clock; from now on only advance() moves it."""
        with self._lock:
            self._rebase()
            self._manual = True
        self._notify()

    def poke(self) -> None:
        """Wake every waiter without moving time (state changed elsewhere)."""
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, event in waiters:
            if loop is current:
                event.set()
            else:
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(event.set)

    def real_seconds_until(self, deadline: float) -> float | None:
        """Real seconds until sandbox time reaches `deadline`; None when only advance() can."""
        remaining = deadline - self.now()
        if remaining <= 0:
            return 0.0
        if self._manual:
            return None
        return remaining / self._speed

    async def wait(self, deadline: float | None = None) -> None:
        """Return once `deadline` is reached or the clock changes, whichever comes first."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(entry)
        # Registered before reading the clock, so an advance() in between cannot be missed.
        timeout = None if deadline is None else self.real_seconds_until(deadline)
        try:
            if timeout == 0.0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(entry)

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of sandbox time."""
        deadline = self.now() + seconds
        while self.now() < deadline:
            await self.wait(deadline)
