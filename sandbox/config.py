"""Sandbox configuration: one dataclass, every knob documented."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox instance.

    Time: `manual_clock=True` freezes the clock so it only moves through `advance()`; otherwise it
    runs at `speed` times real time. All durations below are in *sandbox* seconds, so a test can
    fast-forward through them without sleeping.

    Auth: any `Key id:secret` works; key ids in `locked_key_ids` answer 403. Queue calls without
    any key are accepted (fal serves public models keylessly); platform pricing calls are not.
    """

    host: str = "127.0.0.1"
    port: int = 0
    speed: float = 1.0
    """Clock speed-up factor (10.0 = ten sandbox seconds per real second)."""
    manual_clock: bool = False
    """When true, the clock only moves through `advance()`."""
    signing_seed: bytes | None = None
    """32-byte Ed25519 seed for webhook signatures; None makes a fresh key per run."""
    user_id: str = "sandbox-user"
    """Sent as X-Fal-Webhook-User-Id."""
    locked_key_ids: frozenset[str] = frozenset()
    lock_reason: str = "Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
    concurrency_limit: int = 4
    """IN_PROGRESS jobs per key; queued jobs wait, they are never rejected."""
    queue_delay_s: float = 0.5
    """Minimum time a job spends IN_QUEUE before a runner can pick it up."""
    invalid_input_duration_s: float = 0.2
    """How long a job with bad input runs before it fails."""
    retention_s: float = 3600.0
    """Results are kept this long after completion..."""
    retention_large_s: float = 360.0
    """...or this long when the result is 10 KB or more."""
    sse_ping_interval_s: float = 15.0
    """Keep-alive comment interval on the status stream (fal: 15 s)."""
    webhook_max_attempts: int = 10
    webhook_backoff_s: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0)
    """Sandbox seconds to wait before retry n (the last value repeats)."""
    webhook_timeout_s: float = 15.0
    """Real seconds an attempt may take before it counts as failed."""
    webhook_transport: Any = None
    """Optional httpx.AsyncBaseTransport for deliveries (tests use MockTransport)."""
    max_body_bytes: int = 10 * 1024 * 1024
    data_dir: Path | None = None
    """Where `--tls` writes its certificate and key; uploads go to a fresh folder inside it."""
    validate_on_submit: bool = False
    """True: input that breaks the endpoint's published schema, or media that cannot be read,
    is refused at submit with 422 and no job. False (fal's way): the job is queued and fails
    with the same 422 when a runner picks it up."""
    uploads_dir: Path | None = None
    """Where uploaded files and stored outputs live (None: a temporary folder, in `data_dir`
    when that is set); removed when the sandbox closes."""
    upload_token_ttl_s: float = 3600.0
    """Lifetime of a CDN upload token, in sandbox seconds."""
    upload_max_bytes: int = 1024 * 1024 * 1024
    """Largest single file (a small upload, one part, or an assembled multipart file)."""
    upload_store_max_bytes: int = 8 * 1024 * 1024 * 1024
    """Disk the upload store may use in all; past it uploads answer 507."""
    media_fetch_timeout_s: float = 10.0
    """Real seconds a media input from a loopback URL may take to download."""
    media_max_bytes: int = 64 * 1024 * 1024
    """Largest media input a model reads (bigger ones fail with `file_too_large`)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.concurrency_limit < 1:
            raise ValueError("concurrency_limit must be at least 1")
        if self.signing_seed is not None and len(self.signing_seed) != 32:
            raise ValueError("signing_seed must be 32 bytes")
        if self.webhook_max_attempts < 1:
            raise ValueError("webhook_max_attempts must be at least 1")
        if self.upload_token_ttl_s <= 0 or self.upload_max_bytes < 1 or self.media_max_bytes < 1:
            raise ValueError("upload_token_ttl_s, upload_max_bytes and media_max_bytes must be positive")
        self.locked_key_ids = frozenset(self.locked_key_ids)

    def webhook_delay(self, attempt: int) -> float:
        """Sandbox seconds between failed attempt `attempt` (1-based) and the next one."""
        if not self.webhook_backoff_s:
            return 0.0
        return self.webhook_backoff_s[min(attempt - 1, len(self.webhook_backoff_s) - 1)]
