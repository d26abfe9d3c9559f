"""When to retry, and how long to wait: pure functions, tested on their own.

Policy
* Idempotent calls (status, result, cancel, the platform API, the JWKS) retry on HTTP 408,
  409, 429, 502, 503, 504 and on transport errors (connect failures, dropped connections,
  httpx read timeouts), with bounded exponential backoff and full jitter, honouring
  ``Retry-After`` (seconds or an HTTP date), and never beyond the call's total deadline.
* A 504 carrying ``X-Fal-Request-Timeout-Type`` is the caller's own start timeout expiring;
  retrying would only repeat it, so it is final.
* Submit spends money, so it is retried only when the failure proves fal never accepted the
  request: the TCP connection could not be made (``httpx.ConnectError`` /
  ``httpx.ConnectTimeout``: no byte of the request left this machine), or fal answered 429
  (rate limiting happens at the front door, before anything is queued, and fal's docs say
  queued requests are never rejected for concurrency). A read timeout, a dropped connection
  or a 5xx after the body was sent may mean the job is queued and billed, so those surface
  to the caller, who can check with a status call instead of paying twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

__all__ = [
    "RETRY_STATUSES", "NOT_SENT", "retry_status", "retry_exception", "parse_retry_after", "backoff_delay", "next_delay"
]


RETRY_STATUSES = frozenset({408, 409, 429, 502, 503, 504})
# Proof that the request never reached fal: the connection itself failed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
"""Transport failures that prove a request never reached the server."""


def retry_status(status: int, headers: Mapping[str, str], *, submit: bool = False) -> bool:
    """True when an HTTP answer with this status may be retried."""
    if submit:
        return status == 429
    if status not in RETRY_STATUSES:
        return False
    return not (status == 504 and "x-fal-request-timeout-type" in headers)


def retry_exception(exc: BaseException, *, submit: bool = False) -> bool:
    """True when a transport failure may be retried."""
    if submit:
        return isinstance(exc, NOT_SENT)
    return isinstance(exc, httpx.TransportError)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, *, base_s: float = 0.1, cap_s: float = 10.0,
                  rand: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap_s, base_s * (2.0 ** max(0, attempt)))
    return rand() * ceiling


def next_delay(attempt: int, remaining_s: float, *, retry_after_s: float | None = None,
               max_retries: int = 4, base_s: float = 0.1, cap_s: float = 10.0,
               rand: Callable[[], float] = random.random) -> float | None:
    """Seconds to sleep before retry number ``attempt + 1``, or None to give up.

    Gives up when the retries are used up or the wait would not end before the deadline.
    """
    if attempt >= max_retries:
        return None
    if retry_after_s is not None:
        delay = retry_after_s
    else:
        delay = backoff_delay(attempt, base_s=base_s, cap_s=cap_s, rand=rand)
    if delay >= remaining_s:
        return None
    return delay
