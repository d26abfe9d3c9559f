"""The listener's side of the checker process (checker.py): same contract as intake.Intake.

``ProcessIntake.submit`` takes a delivery's raw headers and body and returns the Outcome to
answer, exactly like ``Intake.submit``; the difference is where the work happens. On the
event loop: collect the four signed headers (a duplicated or missing one answers 401 at once),
queue ``(headers, body)``, and once per loop iteration write everything queued as one frame to
the checker. The checker verifies, parses and commits, and its reply resolves the futures; no
thread is involved on this side, so the loop never waits for the GIL or a wake-up.

The checker is started with the app (``start``, from the lifespan) as ``python -m
agent.triggers.checker FD`` with one end of a socketpair, by the same interpreter and so from
the same installed package; its environment carries no secrets, it needs none. If it dies,
every delivery in flight answers 503 (fal retries; a delivery it had already stored then comes back as a
duplicate, so nothing is lost or run twice) and the next delivery starts a new one, at most
one start a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from agent.triggers.check import (
    KEYS_DOWN,
    STORAGE_DOWN,
    Outcome,
    RawHeaders,
    SignedHeaders,
    retry_on_rotation,
    signed_or_refused,
)
from agent.triggers.checker import encode, split_frames
from agent.triggers.inbox import Inbox, NewEvent
from tools.webhooks import (
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    HEADER_USER_ID,
    JwksCache,
    JwksError,
)

log = logging.getLogger(__name__)

_SECRETS = ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "OPENAI_API_KEY")


class _TooSoon(OSError):
    """The checker was (re)started less than restart_after_s ago."""


class _Wire(asyncio.Protocol):
    """Reads the checker's reply frames and hands them to the intake."""

    def __init__(self, owner: ProcessIntake) -> None:
        self.owner = owner
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for replies in split_frames(self.buffer):
            self.owner._on_replies(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._on_lost()


class ProcessIntake:
    """Verify, validate and store deliveries in the checker process; see the module docstring."""

    def __init__(
        self,
        inbox: Inbox,
        jwks: JwksCache,
        *,
        clock: Callable[[], float] = time.time,
        on_batch: Callable[[list[Outcome]], None] | None = None,
        settled_as: str | None = None,
    ) -> None:
        self.inbox = inbox
        self.jwks = jwks
        self.clock = clock
        self.on_batch = on_batch
        self.settled_as = settled_as
        self._queue: list[tuple[asyncio.Future[Outcome], SignedHeaders, bytes, str | None]] = []
        self._flush_scheduled = False
        self._pending: dict[int, tuple[float, list[Any]]] = {}
        self._next_batch = 0
        self._transport: asyncio.Transport | None = None
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._start_lock: asyncio.Lock | None = None
        self._last_start = float("-inf")
        self.restart_after_s = 1.0  # a checker that keeps dying is started at most this often
        self._sent_keys: object = None

    @property
    def pid(self) -> int | None:
        """The checker's process id while it runs (tests use it to kill it)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    async def submit(self, headers: RawHeaders, body: bytes, endpoint_id: str | None,
                     found: SignedHeaders | None = None) -> Outcome:
        """Verify, validate and store one delivery; the Outcome says what to answer.

        `found`: the four signed headers, when the caller collected them already (the
        listener's check_head, which also saw that none is missing or repeated)."""
        checked = signed_or_refused(headers, found)  # the checker only gets deliveries with all four
        if isinstance(checked, Outcome):
            return checked
        signed = checked
        return await retry_on_rotation(self.jwks, signed, body, lambda: self._enqueue(signed, body, endpoint_id))

    async def _enqueue(self, found: SignedHeaders, body: bytes, endpoint_id: str | None) -> Outcome:
        keys = self.jwks.cached_keys()
        if keys is None:
            try:
                keys = await self.jwks.keys()
            except JwksError:
                return KEYS_DOWN
        if (self._transport is None or self._transport.is_closing()) and not await self.start():
            return STORAGE_DOWN
        transport = self._transport
        assert transport is not None
        if keys is not self._sent_keys:  # the cache hands out a new list when the keys change
            transport.write(encode(("keys", [bytes(k) for k in keys])))
            self._sent_keys = keys
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((future, found, body, endpoint_id))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        """Once per loop iteration: everything queued goes to the checker as one frame."""
        self._flush_scheduled = False
        items, self._queue = self._queue, []
        if not items:
            return
        if self._transport is None or self._transport.is_closing():
            self._fail(items)
            return
        batch_id = self._next_batch
        self._next_batch += 1
        received_at = self.clock()
        self._pending[batch_id] = (received_at, items)
        wire = [(f[HEADER_REQUEST_ID], f[HEADER_USER_ID], f[HEADER_TIMESTAMP], f[HEADER_SIGNATURE], body, endpoint)
                for _, f, body, endpoint in items]
        self._transport.write(encode(("batch", batch_id, received_at, wire)))

    def _on_replies(self, replies: list[Any]) -> None:
        stored: list[Outcome] = []
        for batch_id, offset, results in replies:
            received_at, items = self._pending.get(batch_id, (0.0, []))
            if offset + len(results) >= len(items):  # the batch's last answers
                self._pending.pop(batch_id, None)
            for (future, found, body, endpoint), (code, reason, new, status) in zip(
                    items[offset:offset + len(results)], results):
                if code == 200:
                    event = NewEvent(request_id=found[HEADER_REQUEST_ID], received_at=received_at, status=status,
                                     body=body, user_id=found[HEADER_USER_ID], endpoint_id=endpoint)
                    outcome = Outcome(200, None, event, new)
                    stored.append(outcome)
                else:
                    outcome = Outcome(code, reason)
                if not future.done():  # the client may have gone away
                    future.set_result(outcome)
        if stored and self.on_batch is not None:
            self.on_batch(stored)

    def _on_lost(self) -> None:
        """The checker went away: everything in flight answers 503; the next delivery restarts it."""
        self._transport = None
        self._sent_keys = None
        pending, self._pending = self._pending, {}
        for _, items in pending.values():
            self._fail(items)
        proc = self._proc
        if proc is None:
            return  # close() did this: nothing to report
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        log.error("webhook checker exited (code %s); %d deliveries in flight answered 503; the next "
                  "delivery starts a new one", code, sum(len(i) for _, i in pending.values()))

    @staticmethod
    def _fail(items: list[Any]) -> None:
        for future, *_ in items:
            if not future.done():
                future.set_result(STORAGE_DOWN)

    async def start(self) -> bool:
        """Have the checker running (the app's startup calls this, then each delivery); False if it cannot."""
        if self._transport is None or self._transport.is_closing():
            try:
                await self._start()
            except _TooSoon:
                return False  # said once already, when it failed
            except OSError as exc:
                log.error("webhook checker: cannot start: %s", exc)
                return False
        return True

    async def _start(self) -> None:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._transport is not None and not self._transport.is_closing():
                return
            now = time.monotonic()
            if now - self._last_start < self.restart_after_s:
                raise _TooSoon("the checker exited; restarting it at most once a second")
            self._last_start = now
            parent, child = socket.socketpair()
            env = {k: v for k, v in os.environ.items() if k not in _SECRETS}
            try:
                self._proc = subprocess.Popen(  # one fork/exec per checker start
                    [sys.executable, "-m", "agent.triggers.checker", str(child.fileno())],
                    pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            except BaseException:
                parent.close()
                raise
            finally:
                child.close()
            loop = asyncio.get_running_loop()
            self._transport, _ = await loop.create_unix_connection(lambda: _Wire(self), sock=parent)
            self._sock = parent
            self._transport.write(encode(("config", str(self.inbox.path), self.inbox.synchronous,
                                          self.inbox.shared_writers, self.settled_as)))

    def close(self) -> None:
        """Stop the checker: it finishes the batch in hand and exits when the socket closes."""
        transport, self._transport = self._transport, None
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # EOF now, not on the loop's next turn
            except OSError:
                pass
        if transport is not None:
            try:
                transport.close()
            except RuntimeError:  # its event loop is closed already: close the socket here
                if sock is not None:
                    sock.close()
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
