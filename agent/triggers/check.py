"""The webhook intake's contract: one pure check and the interface every strategy implements.

A delivery becomes a stored event in one way only, :func:`check_delivery`: verify the
signature (``tools.webhooks``), then parse and validate the body (``payload.py``), then build
the :class:`~agent.triggers.inbox.NewEvent` to store. It does no I/O, so the strategies that
run it differ only in where: on threads or the event loop (``intake.Intake``, the TUI's
in-process listener and ``--workers`` > 1) or in the checker process (``checker.py``, driven by
``intake_process.ProcessIntake``, what ``webhooks serve`` uses with one worker).

Every strategy is a :class:`WebhookIntake`: the listener hands it a delivery's raw headers,
body and the URL's endpoint and awaits an :class:`Outcome`, the HTTP answer. ``Outcome`` 200
comes only after the commit holding the row returned; nothing is parsed before its signature
verified.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.triggers.inbox import NewEvent
from agent.triggers.payload import PayloadError, parse_webhook_body
from tools.webhooks import (
    HEADER_REQUEST_ID,
    HEADER_USER_ID,
    JwksCache,
    JwksError,
    KeyLike,
    KeysMayHaveRotated,
    WebhookVerificationError,
    require_all,
    signed_headers_from_raw,
    verify_signed_headers,
)

RawHeaders = Sequence[tuple[bytes, bytes]]
"""A request's headers as the ASGI scope holds them: (lowercase name, value) byte pairs."""
SignedHeaders = Mapping[str, str]
"""The four ``X-Fal-Webhook-*`` headers, keyed by their lowercase names (tools.webhooks)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery: ``code`` is the HTTP status to answer."""

    code: int
    reason: str | None = None
    """The short error code of a non-2xx answer (the body's ``error``)."""
    event: NewEvent | None = None
    new: bool = False
    """False with code 200: a request_id stored before (answered as a duplicate)."""
    retry_after_s: int | None = None
    """For a 503: when to try again (the answer's Retry-After)."""


STORAGE_DOWN = Outcome(503, "storage_unavailable")
KEYS_DOWN = Outcome(503, "keys_unavailable")


def check_delivery(signed: SignedHeaders, body: bytes, keys: Sequence[KeyLike], *, now: float,
                   received_at: float, endpoint_id: str | None) -> NewEvent | Outcome:
    """Verify, parse and build the event to store; or the Outcome refusing it (401 or 422).

    `signed` holds the four signed headers, `now` is the wall clock the timestamp is checked
    against, `received_at` what the event records (an injectable clock).
    """
    try:
        verify_signed_headers(signed, body, keys, now=now)
    except WebhookVerificationError as exc:
        return Outcome(401, exc.reason)
    request_id = signed[HEADER_REQUEST_ID]
    try:
        payload = parse_webhook_body(body, expected_request_id=request_id)
    except PayloadError as exc:
        return Outcome(422, exc.reason)
    return NewEvent(request_id=payload.request_id, received_at=received_at, status=payload.status,
                    body=body, user_id=signed.get(HEADER_USER_ID), endpoint_id=endpoint_id)


class WebhookIntake(Protocol):
    """Where the listener sends deliveries to be verified, validated and stored."""

    on_batch: Callable[[list[Outcome]], None] | None
    """Called on the event loop with the outcomes of each stored batch (new or duplicate)."""

    async def start(self) -> bool:
        """Be ready before the first delivery (start a process, say); False if it cannot."""
        ...

    async def submit(self, headers: RawHeaders, body: bytes, endpoint_id: str | None,
                     found: SignedHeaders | None = None) -> Outcome:
        """Check and store one delivery; the Outcome says what to answer. `found`: the four
        signed headers when the caller collected them already (the listener's check_head)."""
        ...

    def close(self) -> None:
        """Let go of threads or processes (a later submit may start them again)."""
        ...


def signed_or_refused(headers: RawHeaders, found: SignedHeaders | None) -> SignedHeaders | Outcome:
    """The four signed headers (`found` when the caller collected them already, else read from
    `headers`), or the 401 Outcome naming the one that is missing or malformed."""
    if found is not None:
        return found
    try:
        signed = signed_headers_from_raw(headers)
        require_all(signed)
    except WebhookVerificationError as exc:
        return Outcome(401, exc.reason)
    return signed


async def retry_on_rotation(jwks: JwksCache, signed: SignedHeaders, body: bytes,
                            attempt: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """Run `attempt`; if no cached key accepted the signature, the keys may have rotated.

    The JWKS cache then refetches if it may (rate-limited) and, if a new key verifies the
    delivery, `attempt` runs once more. If it may not refetch yet and its keys are older than
    the delivery's signature, the answer is 503 with Retry-After, not 401: fal retries, and by
    then the new keys can be fetched.
    """
    outcome = await attempt()
    if outcome.reason != "bad_signature":
        return outcome
    try:
        await jwks.verify(signed, body)
    except WebhookVerificationError as exc:
        return Outcome(401, exc.reason)
    except KeysMayHaveRotated as exc:
        return Outcome(503, "keys_may_have_rotated", retry_after_s=exc.retry_after_s)
    except JwksError:
        return KEYS_DOWN
    return await attempt()
