"""Verify, validate and store deliveries in batches, on one writer thread, before the 2xx.

Why a batch pipeline: an Ed25519 verify costs more than the HTTP work around a small POST,
and a durable commit costs an fsync. Verifying on the event loop put it on the same core as
the HTTP parsing; handing each request to a thread on its own cost a wake-up per request and
made the threads fight over the GIL. Here the event loop only queues ``(signed headers,
body)`` and awaits a future. One task feeds batches to a check thread, which runs
``check.check_delivery`` on each (libsodium releases the GIL, so the loop keeps serving on the
other core); a second thread stores the verified events of a batch in one transaction; the
loop then resolves the batch's futures together. While one batch is in a thread the next one
queues up, so the cost of the hop and of the fsync is shared by everything that arrived
meanwhile.

Nothing changes in the guarantees: a body is parsed only after its signature verified, and a
future resolves "stored" only after the commit holding its row returned.

With ``inline_check`` (``webhooks serve --workers N`` with N > 1) the check runs on the event
loop instead: the processes give the parallelism, and at N=2 the check thread's hop and GIL
hand-offs cost more CPU than verifying inline. Storing stays on the commit thread either way:
committing on the loop stalls it for the fsync. (bench/webhooks.py measures both; the figures
are in docs/webhooks-performance.md.)

A signature no cached key accepts goes back to the loop (``check.retry_on_rotation``), which
asks the JwksCache (it may refetch rotated keys, at most once a minute) and, if the new keys
accept it, queues the delivery once more.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agent.triggers.check import (
    KEYS_DOWN,
    STORAGE_DOWN,
    Outcome,
    RawHeaders,
    SignedHeaders,
    check_delivery,
    retry_on_rotation,
    signed_or_refused,
)
from agent.triggers.inbox import Inbox, NewEvent
from tools.webhooks import (
    JwksCache,
    JwksError,
    KeyLike,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Item:
    signed: SignedHeaders
    body: bytes
    endpoint_id: str | None
    future: asyncio.Future[Outcome]


class Intake:
    """The verified listener's request path; see the module docstring.

    ``on_batch`` is called on the event loop after each batch with the outcomes of the
    deliveries it stored (new or duplicate), to publish notices and wake the action worker.
    """

    def __init__(
        self,
        inbox: Inbox,
        jwks: JwksCache,
        *,
        clock: Callable[[], float] = time.time,
        on_batch: Callable[[list[Outcome]], None] | None = None,
        max_batch: int = 256,
        settled_as: str | None = None,
        inline_check: bool = False,
    ) -> None:
        self.inbox = inbox
        self.jwks = jwks
        self.clock = clock
        self.on_batch = on_batch
        self.max_batch = max_batch
        # With no rules to run, rows are stored already settled (see Inbox.add_many).
        self.settled_as = settled_as
        # With several listener processes the parallelism comes from the processes: verifying
        # on the loop then saves the hop to the check thread and the GIL hand-offs around it.
        self.inline_check = inline_check
        self._queue: list[_Item] = []
        self._flushing = False
        self._verified: list[tuple[_Item, NewEvent]] = []
        self._committing = False
        self._pools: list[ThreadPoolExecutor | None] = [None, None]

    async def start(self) -> bool:
        """Nothing to start: the threads are made on first use (ProcessIntake starts a process here)."""
        return True

    def close(self) -> None:
        """Let the two threads go (they are made again on next use)."""
        for index, pool in enumerate(self._pools):
            if pool is not None:
                pool.shutdown(wait=True)
                self._pools[index] = None

    async def submit(self, headers: RawHeaders, body: bytes, endpoint_id: str | None,
                     found: SignedHeaders | None = None) -> Outcome:
        """Verify, validate and store one delivery; the Outcome says what to answer (`found`:
        the signed headers if the caller collected them already)."""
        checked = signed_or_refused(headers, found)
        if isinstance(checked, Outcome):
            return checked
        signed = checked
        return await retry_on_rotation(self.jwks, signed, body, lambda: self._enqueue(signed, body, endpoint_id))

    async def _enqueue(self, signed: SignedHeaders, body: bytes, endpoint_id: str | None) -> Outcome:
        if self.jwks.cached_keys() is None:
            try:
                await self.jwks.keys()
            except JwksError:
                return KEYS_DOWN
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(signed, body, endpoint_id, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    def _pool(self, index: int) -> ThreadPoolExecutor:
        pool = self._pools[index]
        if pool is None:
            pool = self._pools[index] = ThreadPoolExecutor(1, thread_name_prefix=f"webhook-{('check', 'commit')[index]}")
        return pool

    async def _flush(self) -> None:
        """Stage 1: verify and validate queued deliveries, a batch at a time, on the check thread."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                keys = self.jwks.cached_keys()
                if keys is None:
                    try:
                        keys = await self.jwks.keys()
                    except JwksError:
                        self._resolve(batch, [KEYS_DOWN] * len(batch))
                        continue
                try:
                    if self.inline_check:
                        outcomes, events = self._check(batch, keys)
                    else:
                        outcomes, events = await loop.run_in_executor(self._pool(0), self._check, batch, keys)
                except Exception:  # a bug: answer 503 (fal retries) and say what it was
                    log.exception("webhook intake: checking a batch of %d failed", len(batch))
                    self._resolve(batch, [STORAGE_DOWN] * len(batch))
                    continue
                self._resolve(batch, outcomes)  # the rejected ones answer now
                if events:
                    self._verified.extend(events)
                    if not self._committing:
                        self._committing = True
                        loop.create_task(self._commit())
        finally:
            self._flushing = False

    async def _commit(self) -> None:
        """Stage 2: store everything verified so far in one transaction, while stage 1 goes on."""
        loop = asyncio.get_running_loop()
        try:
            while self._verified:
                group, self._verified = self._verified, []
                events = [ev for _, ev in group]
                try:
                    news = await loop.run_in_executor(
                        self._pool(1), functools.partial(self.inbox.add_many, events, settled_as=self.settled_as))
                except Exception as exc:  # the callers answer 503 and fal retries
                    log.error("webhook intake: storing %d events failed: %s: %s", len(group), type(exc).__name__, exc)
                    self._resolve([item for item, _ in group], [STORAGE_DOWN] * len(group))
                    continue
                outcomes = [Outcome(200, None, ev, new) for ev, new in zip(events, news)]
                self._resolve([item for item, _ in group], outcomes)
                if self.on_batch is not None:
                    self.on_batch(outcomes)
        finally:
            self._committing = False

    @staticmethod
    def _resolve(batch: list[_Item], outcomes: Sequence[Outcome | None]) -> None:
        for item, outcome in zip(batch, outcomes):
            if outcome is not None and not item.future.done():  # the client may have gone away
                item.future.set_result(outcome)

    def _check(self, batch: list[_Item], keys: Sequence[KeyLike]
               ) -> tuple[list[Outcome | None], list[tuple[_Item, NewEvent]]]:
        """On the check thread: check_delivery for each; None = verified, to store."""
        now = time.time()  # the signature window is checked against real time, always
        received_at = self.clock()
        outcomes: list[Outcome | None] = []
        events: list[tuple[_Item, NewEvent]] = []
        for item in batch:
            checked = check_delivery(item.signed, item.body, keys, now=now, received_at=received_at,
                                     endpoint_id=item.endpoint_id)
            if isinstance(checked, Outcome):
                outcomes.append(checked)
            else:
                events.append((item, checked))
                outcomes.append(None)
        return outcomes, events
