"""Following a queue request in the background until it ends, as a stream of plain events.

A UI calls `follow_job` for each request it submitted or was told about and renders what comes
out: `JobStatus` for every status fal reports (queue position, logs), then exactly one
`JobOutcome` (the result, fal's error, fal's word that it was cancelled, or why following
stopped). It reads fal through the same `FalClient` the tools use, but records nothing in the
transcript: these are the UI's own reads, not the agent's tool calls.

It uses the SSE status stream and falls back to polling (once a second) when the stream
cannot be had; every wait is bounded by `deadline_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CANCELLED_TYPES", "JobStatus", "JobOutcome", "follow_job"]


log = logging.getLogger(__name__)

CANCELLED_TYPES = {"request_cancelled"}


@dataclass(frozen=True)
class JobStatus:
    """One status as fal reported it (`data` is its JSON, with `request_id` and `endpoint_id`)."""

    request_id: str
    endpoint_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class JobOutcome:
    """How following ended.

    `kind` is `completed` (with `result`), `failed` (fal's error in `message`), `cancelled`
    (fal said the request was cancelled), or `lost` (following stopped: deadline, unreachable
    fal; the request itself may still be running, `message` says why).
    """

    request_id: str
    endpoint_id: str
    kind: str
    result: Any = None
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def _dump(status: Any) -> dict[str, Any]:
    dump = getattr(status, "model_dump", None)
    data = dump(mode="json") if callable(dump) else dict(status or {})
    return data if isinstance(data, dict) else {}


async def _statuses(client: Any, endpoint_id: str, request_id: str,
                    deadline: float) -> AsyncIterator[dict[str, Any]]:
    """Statuses until COMPLETED: the SSE stream, else polls; TimeoutError past the deadline."""
    from tools.fal.errors import FalError, FalTimeoutError

    try:
        async for status in client.stream_status(endpoint_id, request_id, logs=True,
                                                 deadline_s=max(0.1, deadline - time.monotonic())):
            data = _dump(status)
            yield data
            if data.get("status") == "COMPLETED":
                return
    except FalTimeoutError as exc:
        raise TimeoutError(str(exc)) from exc
    except FalError as exc:
        if getattr(exc, "status", None) in (401, 403, 404, 422):
            raise  # polling would say the same
        log.info("status stream for %s failed (%s); polling instead", request_id, type(exc).__name__)
    while time.monotonic() < deadline:
        data = _dump(await client.status(endpoint_id, request_id, logs=True))
        yield data
        if data.get("status") == "COMPLETED":
            return
        await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    raise TimeoutError("the follow deadline passed")


async def follow_job(client: Any, endpoint_id: str, request_id: str, *,
                     deadline_s: float = 1800.0) -> AsyncIterator[JobStatus | JobOutcome]:
    """Yield the request's statuses, then its one outcome (never raises for fal or network errors)."""
    from agent.redact import redact_text
    from tools.fal.errors import FalError, RequestFailedError

    deadline = time.monotonic() + deadline_s
    last: dict[str, Any] = {}
    try:
        async for data in _statuses(client, endpoint_id, request_id, deadline):
            last = data
            yield JobStatus(request_id, endpoint_id, {**data, "request_id": request_id,
                                                       "endpoint_id": endpoint_id})
    except TimeoutError:
        yield JobOutcome(request_id, endpoint_id, "lost",
                         message=f"stopped following after {deadline_s:.0f}s; the request may still be running")
        return
    except FalError as exc:
        yield JobOutcome(request_id, endpoint_id, "lost", message=redact_text(str(exc)))
        return
    reported = last.get("metrics")
    metrics: dict[str, Any] = reported if isinstance(reported, dict) else {}
    if last.get("error_type") in CANCELLED_TYPES:
        yield JobOutcome(request_id, endpoint_id, "cancelled", message=str(last.get("error") or "cancelled"),
                         metrics=metrics)
        return
    try:
        result = await client.result(endpoint_id, request_id)
    except RequestFailedError as exc:
        kind = "cancelled" if getattr(exc, "fal_error_type", None) in CANCELLED_TYPES else "failed"
        yield JobOutcome(request_id, endpoint_id, kind, message=redact_text(str(exc)), metrics=metrics)
        return
    except FalError as exc:
        yield JobOutcome(request_id, endpoint_id, "lost",
                         message=f"the result could not be fetched: {redact_text(str(exc))}", metrics=metrics)
        return
    yield JobOutcome(request_id, endpoint_id, "completed", result=result, metrics=metrics)
