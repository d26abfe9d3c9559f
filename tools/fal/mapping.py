"""Turn fal.ai's HTTP answers into models or typed errors (pure; no I/O).

fal.ai speaks two error dialects:
* queue hosts (FastAPI style): ``{"detail": str | list}`` plus ``error_type`` in the body or
  the ``X-Fal-Error-Type`` header;
* platform API v1: ``{"error": {"type", "message", "request_id"?}}``.
Both are read by :func:`error_from_response`; the request id comes from ``x-fal-request-id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import pydantic

from tools.fal import errors as E
from tools.fal.retry import parse_retry_after
from tools.redact import MASK, Redactor

__all__ = ["REDACTED", "scrub", "scrub_obj", "summarize_detail", "error_from_response", "parse_model", "parse_json"]


_M = TypeVar("_M", bound=pydantic.BaseModel)
_MAX_TEXT = 300
REDACTED = MASK


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove every form of every secret (see :mod:`tools.redact`) from text."""
    return Redactor.for_secrets(secrets).text(text)


def scrub_obj(value: Any, secrets: Iterable[str]) -> Any:
    """``scrub`` applied to every string (dict keys too) inside a JSON-like value."""
    return Redactor.for_secrets(secrets)(value)


def summarize_detail(detail: Any) -> str:
    """A one-line human summary of a FastAPI ``detail`` (string or list of field errors)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body") or "input"
                parts.append(f"{loc}: {item.get('msg', item.get('type', 'invalid'))}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail, default=str)[:_MAX_TEXT] if detail is not None else ""


def _body(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


def error_from_response(status: int, headers: Mapping[str, str], content: bytes, *,
                        secrets: Iterable[str] = ()) -> E.FalError:
    """Build the typed error for a non-2xx fal.ai answer."""
    body = _body(content)
    request_id = headers.get("x-fal-request-id")
    fal_type = headers.get("x-fal-error-type")
    detail: Any = None
    message = ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # platform shape
            fal_type = err.get("type") or fal_type
            message = str(err.get("message") or "")
            request_id = request_id or err.get("request_id")
        else:
            fal_type = body.get("error_type") or fal_type
            detail = body.get("detail")
            if detail is None and "status" in body:
                detail = body.get("status")
            message = summarize_detail(detail) if detail is not None else ""
    elif content:
        message = content[:_MAX_TEXT].decode("utf-8", "replace").strip()
    secrets = tuple(secrets)
    text = scrub(f"HTTP {status}" + (f": {message}" if message else ""), secrets)
    if secrets:  # a hostile or buggy server could echo the Authorization header anywhere
        fal_type, request_id, detail = scrub_obj([fal_type, request_id, detail], secrets)
    kw: dict[str, Any] = {"status": status, "fal_error_type": fal_type, "request_id": request_id,
                          "detail": detail if isinstance(detail, list) else None}
    cls = _class_for(status, fal_type, text)
    if cls is E.RateLimitedError:
        return E.RateLimitedError(text, retry_after_s=parse_retry_after(headers.get("retry-after")),
                                  **kw)
    return cls(text, **kw)


def _class_for(status: int, fal_type: str | None, text: str) -> type[E.FalError]:
    if status == 401:
        return E.AuthError
    if status == 403:
        return E.LockedAccountError if "locked" in text.lower() else E.ForbiddenError
    if status == 404:
        return E.NotFoundError
    if status == 422 or (status == 400 and fal_type == "validation_error"):
        return E.ValidationError
    if status == 429 or fal_type == "rate_limited":
        return E.RateLimitedError
    if status == 408:
        return E.FalTimeoutError
    if status >= 500:
        return E.ServerError
    return E.FalError


def parse_model(cls: type[_M], content: bytes, *, request_id: str | None = None) -> _M:
    """Validate a JSON body into ``cls``; InvalidResponseError for non-JSON or a wrong shape."""
    try:
        return cls.model_validate_json(content)
    except pydantic.ValidationError as exc:
        kinds = {e["type"] for e in exc.errors()}
        what = "not valid JSON (truncated?)" if "json_invalid" in kinds else (
            f"not a valid {cls.__name__}: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:3]))
        raise E.InvalidResponseError(f"fal.ai response was {what}",
                                     request_id=request_id) from exc


def parse_json(content: bytes, *, request_id: str | None = None) -> Any:
    """Decode a JSON body; InvalidResponseError for non-JSON or truncated text."""
    try:
        return json.loads(content)
    except ValueError as exc:
        raise E.InvalidResponseError("fal.ai response was not valid JSON (truncated?)",
                                     request_id=request_id) from exc
