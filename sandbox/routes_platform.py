"""The platform API v1 (§3): model search, pricing and cost estimates."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox import catalog
from sandbox.auth import Caller
from sandbox.http import (
    BodyTooLarge,
    apply_faults,
    caller_or_error,
    json_response,
    maybe_malformed,
    platform_error,
    read_body,
    state_of,
)

DEFAULT_LIMIT, MAX_LIMIT, MAX_IDS = 50, 100, 50
_EXPANDS = ("openapi-3.0", "enterprise_status")


class Invalid(Exception):
    """A 400 validation_error with a message for the user."""


def _ids(request: Request) -> list[str]:
    """`endpoint_id` given repeated and/or comma-separated, de-duplicated in order."""
    ids: list[str] = []
    for value in request.query_params.getlist("endpoint_id"):
        ids.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(ids))


def _page(cursor: str | None) -> int:
    if cursor is None:
        return 1
    try:
        page = int(base64.b64decode(cursor.encode(), validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("Invalid cursor") from None
    if page < 1:
        raise Invalid("Invalid cursor")
    return page


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise Invalid("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _matches(ep: catalog.Endpoint, words: list[str]) -> bool:
    hay = " ".join([ep.endpoint_id, ep.display_name, ep.category, ep.category.replace("-", " "),
                    " ".join(ep.tags)]).lower()
    return all(w in hay for w in words)


async def models(request: Request) -> Response:
    """GET /v1/models: list, find (endpoint_id) and search (q, category, status)."""
    state = state_of(request)
    caller = caller_or_error(request, platform=True)
    if isinstance(caller, Response):
        return caller
    fault = await apply_faults(state, "platform", None, platform=True)
    if fault is not None:
        return fault
    params = request.query_params
    try:
        limit, page = _limit(params.get("limit")), _page(params.get("cursor"))
        ids = _ids(request)
        if len(ids) > MAX_IDS:
            raise Invalid(f"At most {MAX_IDS} endpoint_id values are allowed")
        status = params.get("status")
        if status is not None and status not in ("active", "deprecated"):
            raise Invalid("status must be 'active' or 'deprecated'")
        expand = [e for value in params.getlist("expand") for e in value.split(",") if e]
        unknown = [e for e in expand if e not in _EXPANDS]
        if unknown:
            raise Invalid(f"Unknown expand value(s): {', '.join(unknown)}; expected {', '.join(_EXPANDS)}")
    except Invalid as exc:
        return platform_error(400, "validation_error", str(exc))
    found = list(catalog.endpoints())
    if ids:
        wanted = set(ids)
        found = [e for e in found if e.endpoint_id in wanted]
    if params.get("category"):
        found = [e for e in found if e.category == params["category"]]
    if status:
        found = [e for e in found if e.status == status]
    words = (params.get("q") or "").lower().split()
    if words:
        found = [e for e in found if _matches(e, words)]
    start = (page - 1) * limit
    chunk = found[start:start + limit]
    has_more = start + limit < len(found)
    authed = caller.key_id is not None
    items = []
    for ep in chunk:
        item: dict[str, Any] = {"endpoint_id": ep.endpoint_id, "metadata": ep.metadata(authenticated=authed)}
        if "openapi-3.0" in expand:
            item["openapi"] = ep.openapi()
        if "enterprise_status" in expand:
            item["enterprise_status"] = "ready" if ep.status == "active" else "pending"
        items.append(item)
    next_cursor = base64.b64encode(str(page + 1).encode()).decode() if has_more else None
    reply = json_response({"models": items, "next_cursor": next_cursor, "has_more": has_more})
    return maybe_malformed(state, "platform", None, reply)


def _require_key(request: Request) -> Caller | Response:
    caller = caller_or_error(request, platform=True)
    if isinstance(caller, Caller) and caller.key_id is None:
        return platform_error(401, "authorization_error", "Authentication required")
    return caller


def _unknown(ids: list[str]) -> Response:
    return platform_error(404, "not_found", f"Endpoint(s) not found: {', '.join(ids)}")


async def pricing(request: Request) -> Response:
    """GET /v1/models/pricing?endpoint_id=a,b (1-50 ids; auth required)."""
    state = state_of(request)
    caller = _require_key(request)
    if isinstance(caller, Response):
        return caller
    fault = await apply_faults(state, "platform", None, platform=True)
    if fault is not None:
        return fault
    ids = _ids(request)
    if not ids:
        return platform_error(400, "validation_error", "endpoint_id is required (1-50 ids)")
    if len(ids) > MAX_IDS:
        return platform_error(400, "validation_error", f"At most {MAX_IDS} endpoint_id values are allowed")
    table = catalog.by_id()
    missing = [i for i in ids if i not in table]
    if missing:
        return _unknown(missing)
    prices = [{"endpoint_id": i, "unit_price": table[i].unit_price, "unit": table[i].unit, "currency": "USD"}
              for i in ids]
    reply = json_response({"prices": prices, "next_cursor": None, "has_more": False})
    return maybe_malformed(state, "platform", None, reply)


def _quantity(estimate_type: str, endpoint_id: str, spec: Any) -> float:
    field = "call_quantity" if estimate_type == "historical_api_price" else "unit_quantity"
    if not isinstance(spec, dict) or set(spec) != {field}:
        raise Invalid(f"endpoints[{endpoint_id!r}] must be an object with exactly '{field}'")
    value = spec[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"endpoints[{endpoint_id!r}].{field} must be a number")
    if field == "call_quantity" and (not isinstance(value, int) or value < 1):
        raise Invalid(f"endpoints[{endpoint_id!r}].call_quantity must be an integer >= 1")
    if field == "unit_quantity" and value < 0.000001:
        raise Invalid(f"endpoints[{endpoint_id!r}].unit_quantity must be >= 0.000001")
    return float(value)


async def estimate(request: Request) -> Response:
    """POST /v1/models/pricing/estimate, both estimate types."""
    state = state_of(request)
    caller = _require_key(request)
    if isinstance(caller, Response):
        return caller
    fault = await apply_faults(state, "platform", None, platform=True)
    if fault is not None:
        return fault
    try:
        raw = await read_body(request, state.config.max_body_bytes)
    except BodyTooLarge:
        return platform_error(413, "validation_error", "Request body too large")
    try:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Invalid("Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Invalid("Request body must be a JSON object")
        kind = body.get("estimate_type")
        if kind not in ("historical_api_price", "unit_price"):
            raise Invalid("estimate_type must be 'historical_api_price' or 'unit_price'")
        endpoints = body.get("endpoints")
        if not isinstance(endpoints, dict) or not endpoints:
            raise Invalid("endpoints must be a non-empty object mapping endpoint ids to quantities")
        if len(endpoints) > MAX_IDS:
            raise Invalid(f"At most {MAX_IDS} endpoints are allowed")
        quantities = {eid: _quantity(kind, eid, spec) for eid, spec in endpoints.items()}
    except Invalid as exc:
        return platform_error(400, "validation_error", str(exc))
    table = catalog.by_id()
    missing = [i for i in quantities if i not in table]
    if missing:
        return _unknown(missing)
    if kind == "historical_api_price":
        total = sum(table[i].historical_price * q for i, q in quantities.items())
    else:
        total = sum(table[i].unit_price * q for i, q in quantities.items())
    reply = json_response({"estimate_type": kind, "total_cost": round(total, 6), "currency": "USD"})
    return maybe_malformed(state, "platform", None, reply)
