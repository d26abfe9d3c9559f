"""The webhook listener: a Starlette app with ``POST /webhooks/fal`` and ``GET /healthz``.

Per delivery, in this order (nothing is parsed before it is verified):

0. before a byte of the body is read, cheap checks on the headers alone (``check_head``): 411
   without Content-Length, 413 over the body limit, 401 ``missing_header``/``duplicate_header``/
   ``bad_timestamp``/``timestamp_out_of_range``/``bad_signature_encoding`` for webhook headers
   that could never verify, and 503 (Retry-After) when large bodies already being read fill
   the body budget. These answers carry ``Connection: close`` and the body is never read;
1. read the raw body under a size limit: 413 when the streamed bytes exceed it;
2. verify the signature (``tools.webhooks``): 401 ``{"error": "<reason>"}`` and nothing more;
   503 when the JWKS cannot be had, or (``keys_may_have_rotated``, with Retry-After) when no
   cached key accepts a signature made after the keys were fetched and they may not be
   fetched again yet (fal retries, so nothing is lost);
3. parse and validate the body (``payload.py``): 422 ``{"error": "<reason>"}``;
4. commit it to the inbox (``synchronous=FULL``), and only then answer 200
   ``{"received": true}``; a request_id already stored answers 200 ``{"duplicate": true}``
   and runs nothing again; a storage failure answers 503;
5. wake the action worker, which runs the rules after the acknowledgement.

Steps 2-4 are one pure function, ``check.check_delivery``, run batched away from the event loop
by the intake (a ``check.WebhookIntake``): in the checker process (``intake_process.py`` and
``checker.py``, what ``webhooks serve`` uses with one worker), or on threads or the loop
(``intake.py``: the TUI's in-process listener, ``--workers`` > 1); the handler only reads the
body, hands it over and awaits the outcome.

The endpoint of a job: fal's body has none, so the inbox's ``submitted_jobs`` table (filled
when we submit) is the authority; the ``?endpoint_id=`` the listener adds to the URL it hands
out is the fallback for jobs submitted elsewhere. The query string is not signed, so it only
ever selects which rules run, never whether a delivery is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from agent.triggers.check import Outcome, RawHeaders, WebhookIntake
from agent.triggers.notices import Subscribers, TriggerNotice
from tools.errors import AppError
from tools.webhooks import HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_USER_ID

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/fal"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
_ENDPOINT_RE = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+){0,7}$")

def _json(status: int, data: dict[str, Any]) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status_code=status,
                    media_type="application/json")


_RECEIVED = b'{"received":true}'
_DUPLICATE = b'{"duplicate":true}'


class BodyTooLarge(AppError):
    """The request body is over the limit."""


SMALL_BODY = 64 * 1024
"""Bodies up to this size are read without asking the body budget (a connection holds at most
about this much before uvicorn stops reading it anyway)."""
_MAX_ID = 512  # request and user ids: fal's are UUIDs; anything this long is junk
_CLOSE = (b"connection", b"close")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_OWS = b" \t"  # optional whitespace around a field value: not part of it (RFC 9110 5.5)
_SIGNED = {b"x-fal-webhook-request-id": HEADER_REQUEST_ID, b"x-fal-webhook-user-id": HEADER_USER_ID,
           b"x-fal-webhook-timestamp": HEADER_TIMESTAMP, b"x-fal-webhook-signature": HEADER_SIGNATURE}


class Refused(AppError):
    """check_head's verdict: answer `status` with {"error": reason} before reading the body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


def _refuse(status: int, reason: str, *extra: tuple[bytes, bytes]) -> Response:
    """An answer given before the body is read: the connection closes after it, so the body
    the sender may still be writing is never read or parsed."""
    response = _json(status, {"error": reason})
    response.raw_headers.append(_CLOSE)
    response.raw_headers.extend(extra)
    return response


def _repeated(raw: RawHeaders) -> None:
    """Some header came twice: refuse if it is Content-Length (differing) or a signed one."""
    seen: dict[bytes, bytes] = {}
    for name, value in raw:
        if name == b"content-length" or name in _SIGNED:
            if name in seen:
                if name in _SIGNED:
                    raise Refused(401, "duplicate_header")
                if seen[name] != value:
                    raise Refused(400, "conflicting_content_length")
            seen[name] = value


def _value(raw: bytes) -> str:
    """A header value as text, without the whitespace HTTP does not count as part of it (the
    server strips it already; an ASGI server that does not must not change what verifies)."""
    if raw[:1] in (b" ", b"\t") or raw[-1:] in (b" ", b"\t"):
        raw = raw.strip(_OWS)
    return raw.decode("latin-1")


def check_head(raw: RawHeaders, max_body: int, now: float,
               tolerance_s: float = 300) -> tuple[int, dict[str, str]]:
    """The cheap checks a delivery's headers must pass before its body is read.

    Returns the declared body length and the four signed headers (latin-1 text, keyed as
    tools.webhooks names them), or raises Refused: 411 without a Content-Length, 400 for a
    malformed or conflicting one, 413 over `max_body`, and 401 for webhook headers that could
    never verify, with the reason verification would give (duplicate, missing, timestamp not
    digits or more than `tolerance_s` from `now`, signature not 128 hex digits). The intake
    verifies everything again. `raw` is the ASGI scope's list of (lowercase name, value) pairs.
    """
    headers = dict(raw)
    if len(headers) != len(raw):
        _repeated(raw)
    length = headers.get(b"content-length")
    if length is None:
        raise Refused(411, "length_required")
    length = length.strip(_OWS)
    if not length.isdigit() or len(length) > 15:
        raise Refused(400, "bad_content_length")
    size = int(length)
    if size > max_body:
        raise Refused(413, "too_large")
    request_id = _value(headers.get(b"x-fal-webhook-request-id", b""))
    user_id = _value(headers.get(b"x-fal-webhook-user-id", b""))
    timestamp = _value(headers.get(b"x-fal-webhook-timestamp", b""))
    signature = _value(headers.get(b"x-fal-webhook-signature", b""))
    if not (request_id and user_id and timestamp and signature):
        raise Refused(401, "missing_header")
    if len(request_id) > _MAX_ID or len(user_id) > _MAX_ID:
        raise Refused(401, "missing_header")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Refused(401, "bad_timestamp")
    if abs(now - int(timestamp)) > tolerance_s:
        raise Refused(401, "timestamp_out_of_range")
    if len(signature) != 128 or signature.encode("latin-1").translate(None, _HEX_DIGITS):
        raise Refused(401, "bad_signature_encoding")
    return size, {HEADER_REQUEST_ID: request_id, HEADER_USER_ID: user_id,
                  HEADER_TIMESTAMP: timestamp, HEADER_SIGNATURE: signature}


@dataclass
class ListenerState:
    """What the app needs, kept on ``app.state.listener``."""

    intake: WebhookIntake
    """Verifies, validates and stores deliveries (check.WebhookIntake)."""
    max_body_bytes: int = DEFAULT_MAX_BODY
    body_budget_bytes: int = 32 * 1024 * 1024
    """Bytes of bodies over SMALL_BODY read at once, all requests together (503 past it)."""
    body_in_flight: int = 0
    subscribers: Subscribers = field(default_factory=Subscribers)
    background: list[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    on_stored: Callable[[], None] | None = None
    received: int = 0

    def __post_init__(self) -> None:
        self.intake.on_batch = self.after_batch

    def after_batch(self, stored: list[Outcome]) -> None:
        """On the loop, once per stored batch: count, wake the worker, publish notices."""
        new = sum(1 for o in stored if o.new)
        self.received += new
        if new and self.on_stored is not None:
            self.on_stored()
        if self.subscribers.active:
            for o in stored:
                if (ev := o.event) is not None:
                    self.subscribers.publish(TriggerNotice(
                        "received" if o.new else "duplicate", ev.request_id, ev.status, ev.endpoint_id))


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes (check_head has seen Content-Length)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint_from_query(request: Request) -> str | None:
    if not request.scope.get("query_string"):
        return None  # the usual case: skip building QueryParams
    value = request.query_params.get("endpoint_id")
    return value if value and len(value) <= 200 and _ENDPOINT_RE.match(value) else None


async def receive_webhook(request: Request) -> Response:
    """POST /webhooks/fal: check the headers, read, verify, validate, store, acknowledge."""
    state: ListenerState = request.app.state.listener
    try:
        size, signed = check_head(request.scope["headers"], state.max_body_bytes, time.time())
    except Refused as no:
        return _refuse(no.status, no.reason)
    reserved = 0
    if size > SMALL_BODY:
        if state.body_in_flight + size > state.body_budget_bytes:
            return _refuse(503, "busy", (b"retry-after", b"1"))
        reserved = size
        state.body_in_flight += size
    try:
        body = await _read_body(request, state.max_body_bytes)
    except BodyTooLarge:
        return _refuse(413, "too_large")
    except ClientDisconnect:  # the sender went away (or was timed out) mid-body: nobody reads this
        return _json(400, {"error": "disconnected"})
    finally:
        state.body_in_flight -= reserved
    outcome = await state.intake.submit(request.scope["headers"], body, _endpoint_from_query(request), signed)
    if outcome.code != 200:
        return _failed(outcome)
    return Response(_RECEIVED if outcome.new else _DUPLICATE, media_type="application/json")


def _failed(outcome: Outcome) -> Response:
    """The answer to a delivery the intake refused or could not store."""
    data: dict[str, Any] = {"error": outcome.reason}
    if outcome.reason == "keys_may_have_rotated":
        data["detail"] = "signing keys may have rotated; retry"
    response = _json(outcome.code, data)
    if outcome.retry_after_s is not None:
        response.headers["retry-after"] = str(outcome.retry_after_s)
    return response


async def healthz(request: Request) -> Response:
    """GET /healthz: alive, and how many events this process stored (and which process it is)."""
    state: ListenerState = request.app.state.listener
    # pid: with `--workers N` each process answers for itself
    return _json(200, {"ok": True, "received": state.received, "pid": os.getpid()})


def create_app(state: ListenerState) -> Starlette:
    """The listener app; background jobs in `state.background` run for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await state.intake.start()  # e.g. the checker process: ready before the first delivery
        tasks = [asyncio.ensure_future(job(stop)) for job in state.background]
        try:
            yield
        finally:
            stop.set()
            await _stop_all(tasks)
            state.intake.close()

    app = Starlette(
        routes=[Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.router.redirect_slashes = False  # a sender's typo is a 404, not a redirect to follow
    app.state.listener = state
    return app


_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown path, wrong method) as JSON like every other answer."""
    assert isinstance(exc, HTTPException)
    response = _json(exc.status_code, {"error": _HTTP_REASONS.get(exc.status_code, f"http_{exc.status_code}")})
    response.headers.update(exc.headers or {})
    return response


async def _crash(request: Request, exc: Exception) -> Response:
    """A bug: say so in the log and answer 500 in JSON (fal retries; nothing was acknowledged)."""
    log.error("webhook listener: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _json(500, {"error": "internal_error"})


async def _stop_all(tasks: Sequence[asyncio.Task[None]], timeout_s: float = 5.0) -> None:
    """Give each background job `timeout_s` to see the stop and end; cancel (and say so) if not."""
    for task in tasks:
        try:
            await asyncio.wait_for(task, timeout=timeout_s)
        except TimeoutError:
            log.warning("webhook listener: background job %s did not stop within %.0f s; cancelled",
                        task.get_name(), timeout_s)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("webhook listener: background job %s failed", task.get_name())
