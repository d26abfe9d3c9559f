"""The queue API (§2): submit, status, status stream, result, cancel, on one catch-all route.

URL rules: submit takes the full endpoint id; status/result/cancel accept both the owner/app
form and the full-id form (with sub-path), tolerate trailing slashes, and the sandbox always
emits the owner/app form. `workflows/` and `comfy/` ids keep three segments.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sandbox import catalog, inputs, schemas
from sandbox.auth import Caller
from sandbox.http import (
    BodyTooLarge,
    apply_faults,
    caller_or_error,
    flag,
    json_response,
    maybe_malformed,
    queue_error,
    read_body,
    state_of,
)
from sandbox.jobs import COMPLETED, Job

_LEGACY_ID = re.compile(r"^(\d+)-([a-zA-Z0-9-]+)$")
_ACTIONS = {(): "result", ("status",): "status", ("status", "stream"): "stream", ("cancel",): "cancel"}


def _parse_request_path(segs: list[str]) -> tuple[str, str, str] | None:
    """(prefix id, request id, action) for `.../requests/{id}[/status[/stream]|/cancel]`."""
    for i in range(len(segs) - 2, 0, -1):
        if segs[i] == "requests":
            action = _ACTIONS.get(tuple(segs[i + 2:]))
            if action is not None:
                return "/".join(segs[:i]), segs[i + 1], action
    return None


def _normalise_id(endpoint_id: str) -> str:
    match = _LEGACY_ID.match(endpoint_id)
    return f"{match.group(1)}/{match.group(2)}" if match else endpoint_id


def _not_found_app(endpoint_id: str) -> Response:
    parts = endpoint_id.split("/")
    name = parts[2] if parts[0] in ("workflows", "comfy") and len(parts) > 2 else (
        parts[1] if len(parts) > 1 else parts[0])
    return queue_error(404, f'Application "{name}" not found', "application_not_found")


async def queue_entry(request: Request) -> Response:
    """Dispatch any queue-host URL."""
    segs = [s for s in request.path_params.get("path", "").split("/") if s]
    if not segs:
        return queue_error(404, "Not found: give an endpoint id, e.g. POST /fal-ai/flux/dev", "not_found")
    caller = caller_or_error(request, platform=False)
    if isinstance(caller, Response):
        return caller
    parsed = _parse_request_path(segs)
    if parsed is not None:
        prefix, rid, action = parsed
        wanted = {"result": "GET", "status": "GET", "stream": "GET", "cancel": "PUT"}[action]
        if request.method != wanted:
            return queue_error(405, f"Method {request.method} not allowed here; use {wanted}", "method_not_allowed")
        return await _on_request(request, prefix, rid, action)
    if request.method != "POST":
        return queue_error(405, f"Method {request.method} not allowed; submit with POST", "method_not_allowed")
    return await _submit(request, caller, _normalise_id("/".join(segs)))


def _validate_webhook(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("fal_webhook must be an absolute http(s) URL")
    return url


def _start_timeout(request: Request) -> float | None:
    timeout = request.headers.get("x-fal-request-timeout")
    start_timeout = None
    if timeout is not None:
        try:
            start_timeout = float(timeout)
        except ValueError:
            raise ValueError("X-Fal-Request-Timeout must be a number of seconds") from None
        if not math.isfinite(start_timeout) or start_timeout <= 0.1:
            raise ValueError("X-Fal-Request-Timeout must be greater than 0.1 seconds")
    return start_timeout


def _submit_options(request: Request) -> dict[str, Any]:
    priority = request.headers.get("x-fal-queue-priority", "normal")
    if priority not in ("normal", "low"):
        raise ValueError("X-Fal-Queue-Priority must be 'normal' or 'low'")
    return {"priority": priority, "start_timeout_s": _start_timeout(request),
            "webhook_url": _validate_webhook(request.query_params.get("fal_webhook"))}


def _run_options(request: Request) -> dict[str, Any]:
    return {"start_timeout_s": _start_timeout(request)}


def _invalid(loc: list[Any], msg: str, kind: str, value: Any = None) -> Response:
    return queue_error(422, [{"type": kind, "loc": loc, "msg": msg, "input": value}], "validation_error")


async def create_job(request: Request, caller: Caller, endpoint_id: str, op: str) -> Job | Response:
    """Validate and queue one request (a queue submit, or a synchronous run): the job, or the
    error fal would send. The body is checked against the endpoint's published schema and its
    media inputs are read (`sandbox.inputs`); what is wrong fails the job with 422 when a runner
    picks it up, or, with `validate_on_submit`, answers 422 now and records no job. `op` names the fault op ("submit" or "run"); runs ignore the queue-only
    options (priority, fal_webhook: fal.run cannot send webhooks) but honour the start timeout."""
    state = state_of(request)
    endpoint = catalog.by_id().get(endpoint_id)
    if endpoint is None:
        return _not_found_app(endpoint_id)
    fault = await apply_faults(state, op, endpoint_id)
    if fault is not None:
        return fault
    try:
        options = _submit_options(request) if op == "submit" else _run_options(request)
    except ValueError as exc:
        return _invalid(["header"], str(exc), "value_error")
    try:
        raw = await read_body(request, state.config.max_body_bytes)
    except BodyTooLarge:
        return queue_error(413, f"Request body exceeds {state.config.max_body_bytes} bytes", "payload_too_large")
    if op == "run" and request.method == "GET" and not raw.strip():
        raw = b"{}"  # fal_client.run(method="GET") sends no body
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _invalid(["body", getattr(exc, "pos", 0)], "JSON decode error", "json_invalid",
                        {"error": str(exc)[:200]})
    errors = schemas.validate_input(endpoint.family, body)
    media: dict[str, inputs.MediaInput] = {}
    if not errors:
        media, errors = await inputs.resolve(state, endpoint.family, body, request.url.netloc)
    if errors and state.validate_on_submit:
        return queue_error(422, errors, None, headers={"X-Fal-Retryable": "false"})
    state.ensure_ticker()
    base_url = str(request.base_url).rstrip("/")
    return state.queue.submit(endpoint, body, key_id=caller.queue_key, base_url=base_url,
                              now=state.clock.now(), errors=errors, media=media, **options)


async def _submit(request: Request, caller: Caller, endpoint_id: str) -> Response:
    state = state_of(request)
    job = await create_job(request, caller, endpoint_id, "submit")
    if isinstance(job, Response):
        return job
    reply = {"status": "IN_QUEUE", "request_id": job.request_id, "gateway_request_id": job.request_id,
             **job.urls(), "queue_position": state.queue.position(job) or 0}
    return maybe_malformed(state, "submit", endpoint_id, json_response(reply, 200, request_id=job.request_id))


def _find_job(request: Request, prefix: str, rid: str) -> Job | None:
    state = state_of(request)
    now = state.pump()
    job = state.queue.get(rid, now)
    if job is None:
        return None
    prefix = _normalise_id(prefix)
    if prefix not in (job.endpoint.app_id, job.endpoint.endpoint_id):
        return None  # another app's request id: fal scopes requests to their app
    return job


async def _on_request(request: Request, prefix: str, rid: str, action: str) -> Response:
    state = state_of(request)
    job = _find_job(request, prefix, rid)
    endpoint = job.endpoint.endpoint_id if job is not None else _normalise_id(prefix)
    fault = await apply_faults(state, action, endpoint)
    if fault is not None:
        return fault
    if job is None:
        if action == "cancel":
            return queue_error(404, "Request not found", "request_not_found", request_id=rid,
                               extra={"status": "NOT_FOUND"})
        return queue_error(404, f"Request {rid} not found", "request_not_found", request_id=rid)
    if action == "status":
        now = state.pump()
        body = job.status_body(now, state.queue.position(job), flag(request.query_params.get("logs")))
        code = 200 if job.state == COMPLETED else 202
        return maybe_malformed(state, "status", endpoint, json_response(body, code, request_id=rid))
    if action == "result":
        if job.state != COMPLETED:
            return queue_error(400, "Request is still in progress", "request_not_completed", request_id=rid)
        reply = json_response(job.result_body, job.result_status, request_id=rid, headers=job.result_headers)
        return maybe_malformed(state, "result", endpoint, reply)
    if action == "cancel":
        if state.queue.cancel(job, state.clock.now()):
            state.clock.poke()  # wake status streams waiting on this job
            return json_response({"status": "CANCELLATION_REQUESTED"}, 202, request_id=rid)
        return queue_error(400, "Request already completed", "already_completed", request_id=rid,
                           extra={"status": "ALREADY_COMPLETED"})
    return _stream(request, job, endpoint)


def _stream(request: Request, job: Job, endpoint: str) -> Response:
    state = state_of(request)
    with_logs = flag(request.query_params.get("logs"))
    drop = state.faults.take("sse_drop", "stream", endpoint) if state.faults.active() else None
    interval = state.config.sse_ping_interval_s

    async def events():
        sent, last = 0, None
        next_ping = state.clock.now() + interval
        while True:
            now = state.pump()
            body = job.status_body(now, state.queue.position(job), with_logs)
            text = json.dumps(body)  # Python's default separators, as in fal's sample
            if text != last:
                last, sent = text, sent + 1
                yield f"data: {text}\n\n"
                if job.state == COMPLETED:
                    return
                if drop is not None and sent >= drop.after_events:
                    return  # injected: the stream ends before COMPLETED
            if now >= next_ping:
                yield ": ping\n\n"
                next_ping = now + interval
            wake = min(next_ping, state.queue.next_event(), job.next_log_at(now) or math.inf)
            await state.clock.wait(wake)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"x-fal-request-id": job.request_id, "Cache-Control": "no-cache"})
