"""HTTP controls under `/_sandbox/` for tests that run the sandbox out of process.

- `GET  /_sandbox/state`                     clock, job counts, faults
- `POST /_sandbox/clock/advance {"seconds"}` move the clock (webhook attempts finish first)
- `POST /_sandbox/clock/speed {"speed"}`     run at a speed factor
- `POST /_sandbox/clock/manual`              freeze the clock
- `GET|POST|DELETE /_sandbox/faults`         list, add (`{"kind", ...}`), clear all
- `DELETE /_sandbox/faults/{id}`             clear one
- `GET  /_sandbox/webhooks`                  delivery records with every attempt
- `GET  /_sandbox/uploads`                   uploaded files (size, parts, lifecycle), counters
                                             `parts_received`, `tokens_issued`, `used_bytes`
- `POST /_sandbox/validation {"on_submit"}`  true: bad input answers 422 at submit, no job;
                                             false: the job fails with it (fal's way)
- `POST /_sandbox/reset`                     forget jobs, faults, deliveries and uploads
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.http import BodyTooLarge, json_response, queue_error, read_body, state_of


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        raw = await read_body(request, 64 * 1024)
    except BodyTooLarge:
        raise ValueError("control body too large") from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"'{name}' must be a finite number")
    return float(value)


def _bad(exc: Exception) -> Response:
    return queue_error(422, str(exc), "validation_error")


def _snapshot(request: Request) -> dict[str, Any]:
    state = state_of(request)
    now = state.pump()
    return {"now": now, "manual": state.clock.manual, "speed": state.clock.speed,
            "jobs": len(state.queue.jobs), "in_flight": state.queue.in_flight(),
            "faults": [f.to_dict() for f in state.faults.list()],
            "webhook_deliveries": len(state.webhooks.deliveries), "uploads": len(state.uploads.files),
            "upload_parts_received": state.uploads.parts_received,
            "validate_on_submit": state.validate_on_submit}


async def get_state(request: Request) -> Response:
    """Clock and counters."""
    return json_response(_snapshot(request))


async def advance(request: Request) -> Response:
    """Move the clock forward."""
    try:
        seconds = _number(await _json_body(request), "seconds")
        if seconds < 0:
            raise ValueError("'seconds' must be >= 0")
    except ValueError as exc:
        return _bad(exc)
    await state_of(request).advance(seconds)
    return json_response(_snapshot(request))


async def speed(request: Request) -> Response:
    """Switch to speed mode."""
    try:
        factor = _number(await _json_body(request), "speed")
        state_of(request).clock.set_speed(factor)
    except ValueError as exc:
        return _bad(exc)
    return json_response(_snapshot(request))


async def manual(request: Request) -> Response:
    """Freeze the clock."""
    state_of(request).clock.set_manual()
    return json_response(_snapshot(request))


async def faults(request: Request) -> Response:
    """List, add or clear faults."""
    state = state_of(request)
    if request.method == "DELETE":
        return json_response({"cleared": state.faults.clear()})
    if request.method == "POST":
        try:
            body = await _json_body(request)
            kind = body.pop("kind", None)
            if not isinstance(kind, str):
                raise ValueError("'kind' is required")
            fault = state.faults.add(kind, **body)
        except (ValueError, TypeError) as exc:
            return _bad(exc)
        return json_response(fault.to_dict(), 201)
    return json_response({"faults": [f.to_dict() for f in state.faults.list()]})


async def fault_one(request: Request) -> Response:
    """Clear one fault by id."""
    raw = request.path_params["fault_id"]
    if not raw.isdigit():
        return _bad(ValueError("fault id must be an integer"))
    removed = state_of(request).faults.clear(int(raw))
    if not removed:
        return queue_error(404, f"No fault {raw}", "not_found")
    return json_response({"cleared": removed})


async def webhooks(request: Request) -> Response:
    """Every delivery and its attempts."""
    state = state_of(request)
    state.pump()
    return json_response({"deliveries": [d.to_dict() for d in state.webhooks.deliveries]})


async def uploads(request: Request) -> Response:
    """Every uploaded file and the upload counters."""
    return json_response(state_of(request).uploads.snapshot())


async def validation(request: Request) -> Response:
    """Choose where bad input is refused: at submit, or by the job."""
    try:
        body = await _json_body(request)
        on_submit = body.get("on_submit")
        if not isinstance(on_submit, bool):
            raise ValueError("'on_submit' must be true or false")
    except ValueError as exc:
        return _bad(exc)
    state_of(request).validate_on_submit = on_submit
    return json_response(_snapshot(request))


async def reset(request: Request) -> Response:
    """Forget jobs, faults, deliveries and uploads."""
    state_of(request).reset()
    return json_response(_snapshot(request))


ROUTES = [
    Route("/_sandbox/state", get_state, methods=["GET"]),
    Route("/_sandbox/clock/advance", advance, methods=["POST"]),
    Route("/_sandbox/clock/speed", speed, methods=["POST"]),
    Route("/_sandbox/clock/manual", manual, methods=["POST"]),
    Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_sandbox/faults/{fault_id}", fault_one, methods=["DELETE"]),
    Route("/_sandbox/webhooks", webhooks, methods=["GET"]),
    Route("/_sandbox/uploads", uploads, methods=["GET"]),
    Route("/_sandbox/validation", validation, methods=["POST"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
]
