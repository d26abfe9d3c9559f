"""The queue status stream (``.../status/stream``, shared/fal-api.md §2.4) over httpx-sse.

fal sends one ``data: <status JSON>`` event per update, ``: ping`` comments as keep-alives,
and closes the connection after COMPLETED. Pings carry no status, so they are skipped, but
they are bytes on the wire: httpx's read timeout is per read, so each ping restarts it and a
quiet-but-alive stream never times out. A stream that closes or breaks before COMPLETED is
reopened (with jittered backoff) until COMPLETED or the caller's deadline, which raises
:class:`FalTimeoutError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from tools.fal import errors as E
from tools.fal.mapping import error_from_response, parse_model
from tools.fal.models import QueueStatus
from tools.fal.retry import backoff_delay, parse_retry_after, retry_exception, retry_status

__all__ = ["stream_statuses"]


async def stream_statuses(
    http: httpx.AsyncClient,
    url: str,
    *,
    params: dict[str, Any],
    timeout: httpx.Timeout,
    deadline_s: float,
    request_id: str | None = None,
    secrets: Iterable[str] = (),
) -> AsyncIterator[QueueStatus]:
    """Yield each status as it arrives until COMPLETED; reconnect on drops; stop at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    attempt = 0
    while True:
        retry_after: float | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(end):
                    source = await stack.enter_async_context(
                        aconnect_sse(http, "GET", url, params=params, timeout=timeout))
                    response = source.response
                    if response.status_code >= 400:
                        await response.aread()
                        err = error_from_response(response.status_code, response.headers,
                                                  response.content, secrets=secrets)
                        if not retry_status(response.status_code, response.headers):
                            raise err from httpx.HTTPStatusError(
                                err.message, request=response.request, response=response)
                        retry_after = parse_retry_after(response.headers.get("retry-after"))
                        events = None
                    else:
                        events = source.aiter_sse()
                while events is not None:
                    # The timeout wraps each read, never a yield: a timeout armed across a
                    # yield would fire inside the consumer's code.
                    async with asyncio.timeout_at(end):
                        try:
                            event = await anext(events)
                        except StopAsyncIteration:
                            break
                    if not event.data:
                        continue
                    status = parse_model(QueueStatus, event.data.encode(), request_id=request_id)
                    attempt = 0
                    yield status
                    if status.done:
                        return
        except TimeoutError as exc:
            raise E.FalTimeoutError(
                f"no COMPLETED status within {deadline_s:g}s", request_id=request_id) from exc
        except SSEError as exc:
            raise E.InvalidResponseError(f"status stream is not an event stream: {exc}",
                                         request_id=request_id) from exc
        except httpx.TransportError as exc:
            if not retry_exception(exc):
                raise E.TransportError(f"status stream failed: {type(exc).__name__}",
                                       request_id=request_id) from exc
        # The stream ended or broke before COMPLETED: reopen it after a short, jittered wait.
        delay = retry_after if retry_after is not None else backoff_delay(attempt, cap_s=2.0)
        attempt += 1
        remaining = end - loop.time()
        if remaining <= 0:
            raise E.FalTimeoutError(
                f"no COMPLETED status within {deadline_s:g}s", request_id=request_id)
        await asyncio.sleep(min(delay, remaining))
