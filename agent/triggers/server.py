"""The webhook listener: a Starlette app with ``POST /webhooks/fal`` and ``GET /healthz``.

Per delivery, in this order (nothing is parsed before it is verified):

1. read the raw body under a size limit: 413 when Content-Length or the streamed bytes exceed it;
2. verify the signature (``tools.webhooks``): 401 ``{"error": "<reason>"}`` and nothing more;
   503 when the JWKS cannot be had (fal retries, so nothing is lost);
3. parse and validate the body (``payload.py``): 422 ``{"error": "<reason>"}``;
4. commit it to the inbox (``synchronous=FULL``), and only then answer 200
   ``{"received": true}``; a request_id already stored answers 200 ``{"duplicate": true}``
   and runs nothing again; a storage failure answers 503;
5. wake the action worker, which runs the rules after the acknowledgement.

Steps 2-4 run batched away from the event loop: in the checker process (``checker.py`` and
``intake_process.py``, what ``webhooks serve`` uses with one worker), or on threads
(``intake.py``, the TUI's in-process listener); the handler only reads the body, queues it and
awaits the outcome.

The endpoint of a job: fal's body has none, so the inbox's ``submitted_jobs`` table (filled
when we submit) is the authority; the ``?endpoint_id=`` the listener adds to the URL it hands
out is the fallback for jobs submitted elsewhere. The query string is not signed, so it only
ever selects which rules run, never whether a delivery is accepted.

``bare=True`` answers 200 after reading the body, verifying and storing nothing: the
benchmark's baseline, never for real use. Both modes run this same app and handler up to that
point, so the benchmark compares like with like.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent.triggers.inbox import Inbox
from agent.triggers.intake import Intake, Outcome
from agent.triggers.notices import Subscribers, TriggerNotice
from tools.webhooks import JwksCache

WEBHOOK_PATH = "/webhooks/fal"
CHECK_MODES = ("thread", "inline", "process")
DEFAULT_MAX_BODY = 4 * 1024 * 1024
_ENDPOINT_RE = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+){0,7}$")

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

    jwks: JwksCache | None
    inbox: Inbox | None
    max_body_bytes: int = DEFAULT_MAX_BODY
    bare: bool = False
    clock: Callable[[], float] = time.time
    subscribers: Subscribers = field(default_factory=Subscribers)
    background: list[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    on_stored: Callable[[], None] | None = None
    intake: Any = None  # Intake or ProcessIntake: start(), submit(headers, body, endpoint_id), close()
    received: int = 0
    check: str = "thread"
    """Where deliveries are verified and stored: "thread" or "inline" (intake.Intake), or
    "process" (the checker process, intake_process.ProcessIntake)."""
    settled_as: str | None = None
    """Set when no rule could ever act: events are stored already done, with this outcome."""

    def after_batch(self, stored: list[Outcome]) -> None:
        """On the loop, once per stored batch: count, wake the worker, publish notices."""
        new = sum(1 for o in stored if o.new)
        self.received += new
        if new and self.on_stored is not None:
            self.on_stored()
        if self.subscribers.active:
            for o in stored:
                ev = o.event
                self.subscribers.publish(TriggerNotice(
                    "received" if o.new else "duplicate", ev.request_id, ev.status, ev.endpoint_id))


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
    if not request.scope.get("query_string"):
        return None  # the usual case: skip building QueryParams
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
    outcome = await state.intake.submit(  # type: ignore[union-attr]
        request.scope["headers"], body, _endpoint_from_query(request))
    if outcome.code != 200:
        return _json(outcome.code, {"error": outcome.reason})
    return Response(_RECEIVED if outcome.new else _DUPLICATE, media_type="application/json")


async def healthz(request: Request) -> Response:
    """GET /healthz: alive, and how many events this process stored (and which process it is)."""
    state: ListenerState = request.app.state.listener
    # pid: with `--workers N` each process answers for itself
    return _json(200, {"ok": True, "received": state.received, "bare": state.bare, "pid": os.getpid()})


def create_app(state: ListenerState) -> Starlette:
    """The listener app; background jobs in `state.background` run for the app's lifetime."""
    if not state.bare and (state.jwks is None or state.inbox is None):
        raise ValueError("a verifying listener needs a JWKS cache and an inbox")
    if state.check not in CHECK_MODES:
        raise ValueError(f"check must be one of {', '.join(CHECK_MODES)}")
    if not state.bare and state.intake is None:
        if state.check == "process":
            from agent.triggers.intake_process import ProcessIntake

            state.intake = ProcessIntake(state.inbox, state.jwks, clock=state.clock,  # type: ignore[arg-type]
                                         on_batch=state.after_batch, settled_as=state.settled_as)
        else:
            state.intake = Intake(state.inbox, state.jwks, clock=state.clock,  # type: ignore[arg-type]
                                  on_batch=state.after_batch, settled_as=state.settled_as,
                                  inline_check=state.check == "inline")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        stop = asyncio.Event()
        if state.intake is not None:  # e.g. the checker process: ready before the first delivery
            await state.intake.start()
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
            if state.intake is not None:
                state.intake.close()

    app = Starlette(
        routes=[Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.listener = state
    return app
