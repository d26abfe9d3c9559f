"""Webhook delivery: serialise once, sign as fal does (§4.4), retry with backoff, keep a record.

The timestamp header is *real* wall-clock time (not the sandbox clock): receivers check it
against their own clock within +/- 5 minutes, and a sped-up sandbox must not break that.
Backoff between attempts runs on the sandbox clock, so tests fast-forward through it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from nacl.signing import SigningKey

from sandbox.clock import Clock
from sandbox.config import SandboxConfig
from sandbox.faults import Faults
from sandbox.jobs import Job


class Signer:
    """The Ed25519 key that signs deliveries, and its JWKS."""

    def __init__(self, seed: bytes | None = None) -> None:
        self._key = SigningKey(seed) if seed is not None else SigningKey.generate()
        self.public_key = bytes(self._key.verify_key)
        self.kid = hashlib.sha256(self.public_key).hexdigest()[:16]

    def jwks(self) -> dict[str, Any]:
        """`{"keys": [...]}` with `x` base64url-encoded without padding."""
        x = base64.urlsafe_b64encode(self.public_key).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def sign(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
        """Hex signature over `rid\\nuid\\nts\\nsha256hex(body)`."""
        message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()])
        return self._key.sign(message.encode()).signature.hex()


@dataclass
class Attempt:
    """One delivery attempt, as recorded for inspection."""

    number: int
    sandbox_time: float
    timestamp: str
    signature: str
    status_code: int | None = None
    error: str | None = None
    ok: bool = False


@dataclass
class Delivery:
    """All attempts to deliver one job's webhook."""

    request_id: str
    endpoint_id: str
    url: str
    body: bytes
    due_at: float
    attempts: list[Attempt] = field(default_factory=list)
    state: str = "pending"  # pending | in_flight | delivered | failed

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the controls API."""
        return {"request_id": self.request_id, "endpoint_id": self.endpoint_id, "url": self.url,
                "state": self.state, "due_at": self.due_at, "body": self.body.decode(),
                "attempts": [vars(a) for a in self.attempts]}


class WebhookDispatcher:
    """Pending and finished deliveries; attempts run as tasks on the server's loop."""

    def __init__(self, config: SandboxConfig, clock: Clock, signer: Signer, faults: Faults) -> None:
        self.config, self.clock, self.signer, self.faults = config, clock, signer, faults
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def enqueue(self, job: Job, now: float) -> Delivery:
        """Schedule the delivery of a finished job's webhook (body serialised once, here)."""
        body = json.dumps(job.webhook_body(), sort_keys=True).encode()
        delivery = Delivery(job.request_id, job.endpoint.endpoint_id, job.webhook_url or "", body, now)
        self.deliveries.append(delivery)
        return delivery

    def next_due(self) -> float:
        """Sandbox time of the next pending attempt (inf if none)."""
        return min((d.due_at for d in self.deliveries if d.state == "pending"), default=math.inf)

    def launch_due(self, now: float) -> int:
        """Start every attempt due by `now` (needs a running loop); returns how many started."""
        due = [d for d in self.deliveries if d.state == "pending" and d.due_at <= now]
        for delivery in due:
            delivery.state = "in_flight"
            task = asyncio.get_running_loop().create_task(self._attempt(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def drain(self) -> None:
        """Wait for every attempt in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.config.webhook_transport,
                                             timeout=self.config.webhook_timeout_s, follow_redirects=False)
        return self._client

    async def _attempt(self, delivery: Delivery) -> None:
        timestamp = str(int(time.time()))
        signature = self.signer.sign(delivery.request_id, self.config.user_id, timestamp, delivery.body)
        attempt = Attempt(len(delivery.attempts) + 1, self.clock.now(), timestamp, signature)
        delivery.attempts.append(attempt)
        fault = self.faults.take("webhook_fail", "webhook", delivery.endpoint_id)
        headers = {"Content-Type": "application/json", "X-Fal-Webhook-Request-Id": delivery.request_id,
                   "X-Fal-Webhook-User-Id": self.config.user_id, "X-Fal-Webhook-Timestamp": timestamp,
                   "X-Fal-Webhook-Signature": signature}
        try:
            if fault is not None and fault.mode == "before_send":
                attempt.error = "injected fault: connection refused"
            else:
                response = await self._client_for_loop().post(delivery.url, content=delivery.body, headers=headers)
                attempt.status_code = response.status_code
                if fault is not None:
                    attempt.error = "injected fault: answer lost"
                else:
                    attempt.ok = 200 <= response.status_code < 300
                    if not attempt.ok:
                        attempt.error = f"receiver answered {response.status_code}"
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # a bad URL must not kill the dispatcher
            attempt.error = f"{type(exc).__name__}: {exc}"[:300]
        if attempt.ok:
            delivery.state = "delivered"
        elif attempt.number >= self.config.webhook_max_attempts:
            delivery.state = "failed"
        else:
            delivery.due_at = self.clock.now() + self.config.webhook_delay(attempt.number)
            delivery.state = "pending"
        self.clock.poke()  # the ticker recomputes its next wake-up

    def reset(self) -> None:
        """Forget every delivery (in-flight attempts finish on their own)."""
        self.deliveries.clear()

    async def aclose(self) -> None:
        """Wait for attempts in flight and close the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
