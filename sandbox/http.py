"""Response helpers shared by the routes: fal's two error shapes, JSON, body limits, faults."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.auth import AuthError, Caller, authenticate
from sandbox.state import SandboxState


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


def state_of(request: Request) -> SandboxState:
    """The sandbox behind this request."""
    return request.app.state.sandbox


def json_response(body: Any, status: int = 200, *, request_id: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    """A JSON response that always carries `x-fal-request-id` (fal_client checks for it)."""
    out = {"x-fal-request-id": request_id or str(uuid.uuid4())}
    if headers:
        out.update(headers)
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=out)


def queue_error(status: int, detail: Any, error_type: str | None, *, request_id: str | None = None,
                headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    """Queue-host error: `{"detail", "error_type"}` plus `X-Fal-Error-Type`."""
    body: dict[str, Any] = {"detail": detail}
    if extra:
        body.update(extra)
    hdrs = dict(headers or {})
    if error_type:
        body["error_type"] = error_type
        hdrs["X-Fal-Error-Type"] = error_type
    return json_response(body, status, request_id=request_id, headers=hdrs)


def platform_error(status: int, kind: str, message: str, *, headers: dict[str, str] | None = None) -> Response:
    """Platform API error: `{"error": {"type", "message", "request_id"}}`."""
    rid = str(uuid.uuid4())
    return json_response({"error": {"type": kind, "message": message, "request_id": rid}}, status,
                         request_id=rid, headers=headers)


def caller_or_error(request: Request, *, platform: bool) -> Caller | Response:
    """Authenticate, or the error response fal would send."""
    try:
        return authenticate(request.headers.get("authorization"), state_of(request).config)
    except AuthError as exc:
        if platform:
            return platform_error(exc.status, "authorization_error", exc.message)
        kind = "user_locked" if exc.status == 403 else "authorization_error"
        return queue_error(exc.status, exc.message, kind)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (BodyTooLarge) anything over `limit` bytes."""
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


def flag(value: str | None) -> bool:
    """fal's `logs` flag: `1`, `true`, `True`, `yes` (and `on`) mean on."""
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


async def apply_faults(state: SandboxState, op: str, endpoint: str | None, *, platform: bool = False) -> Response | None:
    """Delay, then a 429 or 5xx if one is injected for `op` on `endpoint`."""
    faults = state.faults
    if not faults.active():
        return None
    delay = faults.take("delay", op, endpoint)
    if delay is not None:
        await state.clock.sleep(delay.delay_s)
    limited = faults.take("rate_limit", op, endpoint)
    if limited is not None:
        headers = {"Retry-After": f"{limited.retry_after:g}"}
        if platform:
            return platform_error(429, "rate_limited", "Rate limit exceeded", headers=headers)
        return queue_error(429, "Rate limit exceeded. Please retry later.", "rate_limited", headers=headers)
    broken = faults.take("server_error", op, endpoint)
    if broken is not None:
        if broken.ingress:
            html = f"<html><head><title>{broken.status}</title></head><body><center>nginx</center></body></html>"
            return Response(html, status_code=broken.status, media_type="text/html")
        if platform:
            return platform_error(broken.status, "server_error", "An unexpected error occurred")
        return queue_error(broken.status, "Runner disconnected (injected fault)", "runner_disconnected")
    return None


def maybe_malformed(state: SandboxState, op: str, endpoint: str | None, response: Response) -> Response:
    """Cut the JSON body short when a `malformed_json` fault is injected."""
    if not state.faults.active() or state.faults.take("malformed_json", op, endpoint) is None:
        return response
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    return Response(body[: max(1, len(body) // 2)], status_code=200, media_type="application/json", headers=headers)
