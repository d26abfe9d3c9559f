"""Argument checks run before any request is built; each failure is an InputError."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tools.fal.errors import InputError
from tools.fal.urls import parse_endpoint_id

__all__ = [
    "PRIORITIES", "MODEL_STATUSES", "ESTIMATE_TYPES", "MAX_ENDPOINT_IDS", "MIN_UNIT_QUANTITY", "json_body", "priority",
    "start_timeout", "webhook_url", "positive", "endpoint_list", "models_params", "estimate_body"
]


PRIORITIES = ("normal", "low")
MODEL_STATUSES = ("active", "deprecated")
ESTIMATE_TYPES = ("historical_api_price", "unit_price")
MAX_ENDPOINT_IDS = 50
MIN_UNIT_QUANTITY = 0.000001


def json_body(arguments: Any) -> str:
    """The model input as JSON text; it must be an object."""
    if not isinstance(arguments, Mapping):
        raise InputError(f"arguments must be a JSON object (dict), got {type(arguments).__name__}")
    try:
        return json.dumps(arguments, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"arguments are not JSON-serialisable: {exc}") from exc


def priority(value: str) -> str:
    """Queue priority: 'normal' or 'low'."""
    if value not in PRIORITIES:
        raise InputError(f"priority must be 'normal' or 'low', got {value!r}")
    return value


def start_timeout(value: float) -> str:
    """X-Fal-Request-Timeout value; fal's clients require more than 1 second."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"start_timeout_s must be a number of seconds, got {value!r}")
    if value <= 1:
        raise InputError(f"start_timeout_s must be greater than 1 second, got {value!r}")
    return str(float(value))


def webhook_url(value: str) -> str:
    """An absolute http(s) URL for fal to POST the result to."""
    try:
        url = httpx.URL(value) if isinstance(value, str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise InputError(f"webhook_url must be an absolute http(s) URL, got {value!r}")
    return str(url)


def positive(name: str, value: float) -> float:
    """A finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def endpoint_list(endpoint_ids: Any) -> list[str]:
    """1-50 valid endpoint ids, normalised."""
    if isinstance(endpoint_ids, str):
        endpoint_ids = [endpoint_ids]
    if not isinstance(endpoint_ids, Sequence) or not endpoint_ids:
        raise InputError("endpoint_ids must be a non-empty list of endpoint ids, "
                         "e.g. ['fal-ai/flux/dev']")
    if len(endpoint_ids) > MAX_ENDPOINT_IDS:
        raise InputError(f"at most {MAX_ENDPOINT_IDS} endpoint ids per call, "
                         f"got {len(endpoint_ids)}")
    return [parse_endpoint_id(e).full for e in endpoint_ids]


def models_params(*, query: str | None, category: str | None, status: str | None,
                  endpoint_ids: Sequence[str] | None, limit: int | None, cursor: str | None,
                  expand_openapi: bool) -> list[tuple[str, str]]:
    """Query parameters for GET /v1/models (repeated endpoint_id, expand=openapi-3.0)."""
    params: list[tuple[str, str]] = []
    for name, value in (("q", query), ("category", category), ("cursor", cursor)):
        if value is not None:
            if not isinstance(value, str):
                raise InputError(f"{name} must be a string, got {type(value).__name__}")
            if value.strip():
                params.append((name, value.strip()))
    if status is not None:
        if status not in MODEL_STATUSES:
            raise InputError(f"status must be 'active' or 'deprecated', got {status!r}")
        params.append(("status", status))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InputError(f"limit must be an integer >= 1, got {limit!r}")
        params.append(("limit", str(limit)))
    if endpoint_ids:
        params.extend(("endpoint_id", e) for e in endpoint_list(endpoint_ids))
    if expand_openapi:
        params.append(("expand", "openapi-3.0"))
    return params


def estimate_body(estimate_type: str, endpoints: Any) -> dict[str, Any]:
    """The POST body of a cost estimate, quantities checked per estimate type."""
    if estimate_type not in ESTIMATE_TYPES:
        raise InputError(f"estimate_type must be 'historical_api_price' or 'unit_price', "
                         f"got {estimate_type!r}")
    if not isinstance(endpoints, Mapping) or not endpoints:
        raise InputError("endpoints must map endpoint ids to quantities, "
                         "e.g. {'fal-ai/flux/dev': 10}")
    if len(endpoints) > MAX_ENDPOINT_IDS:
        raise InputError(f"at most {MAX_ENDPOINT_IDS} endpoints per estimate")
    out: dict[str, Any] = {}
    for endpoint_id, qty in endpoints.items():
        eid = parse_endpoint_id(endpoint_id).full
        if isinstance(qty, bool) or not isinstance(qty, (int, float)) or not math.isfinite(qty):
            raise InputError(f"quantity for {eid!r} must be a number, got {qty!r}")
        if estimate_type == "historical_api_price":
            if qty < 1 or qty != int(qty):
                raise InputError(f"call quantity for {eid!r} must be a whole number >= 1 "
                                 f"(number of API calls), got {qty!r}")
            out[eid] = {"call_quantity": int(qty)}
        else:
            if qty < MIN_UNIT_QUANTITY:
                raise InputError(f"unit quantity for {eid!r} must be >= {MIN_UNIT_QUANTITY} "
                                 f"(billing units, e.g. images or seconds), got {qty!r}")
            out[eid] = {"unit_quantity": qty}
    return {"estimate_type": estimate_type, "endpoints": out}
