"""The webhook listener: a Starlette app with ``POST /webhooks/fal`` and ``GET /healthz``.

Per delivery, in this order (nothing is parsed before it is verified):

1. read the raw body under a size limit: 413 when Content-Length or the streamed bytes exceed it;
2. verify the signature (``tools.webhooks``): 401 ``{"error": "<reason>"}`` and nothing more;
   503 when the JWKS cannot be had (fal retries, so nothing is lost);
3. parse and validate the body (``payload.py``): 422 ``{"error": "<reason>"}``;
4. commit it to the inbox (group commit, ``synchronous=FULL``), and only then answer
   200 ``{"received": true}``; a request_id already stored answers 200 ``{"duplicate": true}``
   and runs nothing again; a storage failure answers 503;
5. wake the action worker, which runs the rules after the acknowledgement.

The endpoint of a job: fal's body has none, so the inbox's ``submitted_jobs`` table (filled
when we submit) is the authority; the ``?endpoint_id=`` the listener adds to the URL it hands
out is the fallback for jobs submitted elsewhere. The query string is not signed, so it only
ever selects which rules run, never whether a delivery is accepted.

``bare=True`` answers 200 after reading the body, verifying and storing nothing: the
benchmark's baseline, never for real use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent.triggers.inbox import GroupCommitter, Inbox, NewEvent
from agent.triggers.notices import Subscribers, TriggerNotice
from agent.triggers.payload import PayloadError, parse_webhook_body
from tools.webhooks import HEADER_REQUEST_ID, HEADER_USER_ID, JwksError, WebhookVerificationError

WEBHOOK_PATH = "/webhooks/fal"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
_ENDPOINT_RE = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+){0,7}$")

Verifier = Callable[[Mapping[str, str], bytes], Awaitable[None]]


def _json(status: int, data: dict[str, Any]) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status_code=status,
                    media_type="application/json")


_RECEIVED = b'{"received":true}'
_DUPLICATE = b'{"duplicate":true}'


class BodyTooLarge(Exception):
    """The request body is over the limit."""


@dataclass
class ListenerState:
    """What the app needs, kept on ``app.state.listener``."""

    verifier: Verifier | None
    inbox: Inbox | None
    max_body_bytes: int = DEFAULT_MAX_BODY
    bare: bool = False
    clock: Callable[[], float] = time.time
    subscribers: Subscribers = field(default_factory=Subscribers)
    background: list[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    on_stored: Callable[[], None] | None = None
    committer: GroupCommitter | None = None
    received: int = 0


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes whatever Content-Length claimed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint_from_query(request: Request) -> str | None:
    value = request.query_params.get("endpoint_id")
    return value if value and len(value) <= 200 and _ENDPOINT_RE.match(value) else None


async def receive_webhook(request: Request) -> Response:
    """POST /webhooks/fal: read, verify, validate, store, acknowledge."""
    state: ListenerState = request.app.state.listener
    try:
        body = await _read_body(request, state.max_body_bytes)
    except BodyTooLarge:
        return _json(413, {"error": "too_large"})
    if state.bare:
        return Response(_RECEIVED, media_type="application/json")
    headers = request.headers
    try:
        await state.verifier(headers, body)  # type: ignore[misc]
    except WebhookVerificationError as exc:
        return _json(401, {"error": exc.reason})
    except JwksError:
        return _json(503, {"error": "keys_unavailable"})
    try:
        payload = parse_webhook_body(body, expected_request_id=headers[HEADER_REQUEST_ID])
    except PayloadError as exc:
        return _json(422, {"error": exc.reason})
    event = NewEvent(
        request_id=payload.request_id, received_at=state.clock(), status=payload.status,
        body=body, user_id=headers.get(HEADER_USER_ID), endpoint_id=_endpoint_from_query(request))
    try:
        is_new = await state.committer.add(event)  # type: ignore[union-attr]
    except Exception:
        return _json(503, {"error": "storage_unavailable"})
    if not is_new:
        state.subscribers.publish(TriggerNotice("duplicate", event.request_id, event.status, event.endpoint_id))
        return Response(_DUPLICATE, media_type="application/json")
    state.received += 1
    if state.on_stored is not None:
        state.on_stored()
    state.subscribers.publish(TriggerNotice("received", event.request_id, event.status, event.endpoint_id))
    return Response(_RECEIVED, media_type="application/json")


async def healthz(request: Request) -> Response:
    """GET /healthz: alive, and how many events this process stored."""
    state: ListenerState = request.app.state.listener
    return _json(200, {"ok": True, "received": state.received, "bare": state.bare})


def create_app(state: ListenerState) -> Starlette:
    """The listener app; background jobs in `state.background` run for the app's lifetime."""
    if not state.bare and (state.verifier is None or state.inbox is None):
        raise ValueError("a verifying listener needs a verifier and an inbox")
    if state.inbox is not None and state.committer is None:
        state.committer = GroupCommitter(state.inbox)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        stop = asyncio.Event()
        tasks = [asyncio.create_task(job(stop)) for job in state.background]
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=5)
                except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                    task.cancel()

    app = Starlette(
        routes=[Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.listener = state
    return app
