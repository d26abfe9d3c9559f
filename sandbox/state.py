"""All of one sandbox's state, at `app.state.sandbox`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from sandbox.clock import Clock
from sandbox.config import SandboxConfig
from sandbox.faults import Faults
from sandbox.jobs import Job
from sandbox.media import MediaStore
from sandbox.queue import QueueManager
from sandbox.uploads import UploadStore
from sandbox.webhooks import Signer, WebhookDispatcher

log = logging.getLogger(__name__)
_RETRY_AFTER_ERROR_S = 0.5  # real seconds the ticker rests after a failed pump (no hot error loop)


class SandboxState:
    """Clock, queue, media, faults, signing key and webhook deliveries of one sandbox.

    Requests bring the queue up to date themselves (`pump()`); a background ticker (started by
    the app's lifespan, or its first request) does the same when nobody is asking: it sleeps in
    `clock.wait()` until the next start, completion, deadline or webhook attempt, or until the
    clock changes (advance, speed, poke; submit and cancel poke), so on a speed clock jobs move
    and webhooks go out on time, and on a manual clock it only wakes when the clock is moved.
    An error in a tick is logged and the ticker carries on. Tests drive time with
    `clock.advance()` (from any thread) or `await advance()` (which also waits for the
    webhook attempts it triggers).
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.clock = Clock(speed=self.config.speed, manual=self.config.manual_clock)
        cfg = self.config
        self.uploads = UploadStore(cfg.uploads_dir, cfg.data_dir, max_file_bytes=cfg.upload_max_bytes,
                                   max_total_bytes=cfg.upload_store_max_bytes, token_ttl_s=cfg.upload_token_ttl_s)
        self.media = MediaStore(self.uploads)
        self.faults = Faults()
        self.signer = Signer(self.config.signing_seed)
        self.webhooks = WebhookDispatcher(self.config, self.clock, self.signer, self.faults)
        self.queue = QueueManager(self.config, self.media, on_complete=self._on_complete,
                                  on_change=self.clock.poke)
        self._ticker: asyncio.Task[None] | None = None
        self.validate_on_submit = self.config.validate_on_submit
        """Refuse bad input at submit (422, no job) instead of failing the job; see SandboxConfig."""

    def _on_complete(self, job: Job) -> None:
        if job.webhook_url:
            self.webhooks.enqueue(job, job.completed_at or self.clock.now())

    def pump(self) -> float:
        """Apply every transition due by now and start due webhook attempts; returns now."""
        now = self.clock.now()
        self.queue.advance(now)
        if self.webhooks.deliveries:
            with contextlib.suppress(RuntimeError):  # no running loop: the ticker will do it
                self.webhooks.launch_due(now)
        return now

    def ensure_ticker(self) -> None:
        """Start the background ticker on the running loop, once."""
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            try:
                self.pump()
                nxt = min(self.queue.next_event(), self.webhooks.next_due())
            except Exception:  # one bad transition must not stop every later one
                log.exception("sandbox ticker: applying due queue events failed; retrying")
                # Rest a little (or until the clock changes) so a persistent error cannot spin.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.clock.wait(None), _RETRY_AFTER_ERROR_S)
                continue
            await self.clock.wait(None if math.isinf(nxt) else nxt)

    async def advance(self, seconds: float, *, wait_webhooks: bool = True) -> float:
        """Move the clock, apply what became due and (by default) finish the webhook attempts."""
        self.clock.advance(seconds)
        now = self.pump()
        if wait_webhooks:
            await self.settle()
        return now

    async def settle(self) -> None:
        """Wait until no webhook attempt is in flight or due now."""
        while True:
            self.pump()
            await self.webhooks.drain()
            if self.webhooks.next_due() > self.clock.now():
                return

    def reset(self) -> None:
        """Forget jobs, faults, deliveries, uploads and stored outputs (the clock and signing key stay)."""
        self.queue.reset()
        self.media.reset()
        self.uploads.reset()
        self.faults.clear()
        self.webhooks.reset()
        self.clock.poke()  # synchronous runs parked on a forgotten job answer now

    async def aclose(self) -> None:
        """Stop the ticker and close the webhook client."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
            self._ticker = None
        await self.webhooks.aclose()
        self.media.reset()
        self.uploads.close()
