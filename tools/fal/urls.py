"""Endpoint id and request id rules (shared/fal-api.md §2.1), as pure functions.

* An endpoint id is ``owner/app[/sub/path...]``; submit goes to the whole id, while status,
  result and cancel use only ``owner/app`` (the sub-path is dropped).
* When the first segment is ``workflows`` or ``comfy``, three segments form the app.
* A legacy one-segment id ``1234-my-app`` means ``1234/my-app``; any other one-segment id is
  refused.
* Anything that could change the URL's meaning (``..``, ``?``, ``#``, ``%``, spaces, empty
  segments, a scheme) is refused with :class:`InputError` before a request is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from tools.fal.errors import InputError

__all__ = ["NAMESPACES", "EndpointId", "parse_endpoint_id", "check_request_id", "request_url", "submit_url"]


NAMESPACES = frozenset({"workflows", "comfy"})
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._~-]*")
_LEGACY = re.compile(r"(\d+)-([A-Za-z0-9_][A-Za-z0-9._~-]*)")
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
_EXAMPLE = "expected 'owner/app[/path]', e.g. 'fal-ai/flux/dev'"


@dataclass(frozen=True, slots=True)
class EndpointId:
    """A parsed endpoint id: ``full`` is the submit path, ``app`` the request path prefix."""

    full: str
    app: str
    namespace: str | None
    owner: str
    alias: str
    path: str | None


@lru_cache(maxsize=1024)
def parse_endpoint_id(endpoint_id: str) -> EndpointId:
    """Parse and validate an endpoint id; raise InputError for a malformed one."""
    if not isinstance(endpoint_id, str):
        raise InputError(f"endpoint_id must be a string, got {type(endpoint_id).__name__}")
    text = endpoint_id.strip()
    if not text:
        raise InputError(f"endpoint_id is empty; {_EXAMPLE}")
    if "://" in text:
        raise InputError(f"endpoint_id {text!r} looks like a URL; {_EXAMPLE}")
    parts = text.split("/")
    for seg in parts:
        if not _SEGMENT.fullmatch(seg) or seg in (".", ".."):
            raise InputError(f"endpoint_id {text!r} has an invalid segment {seg!r}; {_EXAMPLE}")
    if len(parts) == 1:
        legacy = _LEGACY.fullmatch(parts[0])
        if legacy is None:
            raise InputError(f"endpoint_id {text!r} has no owner; {_EXAMPLE}")
        parts = [legacy.group(1), legacy.group(2)]
    namespace = None
    if parts[0] in NAMESPACES:
        if len(parts) < 3:
            raise InputError(
                f"endpoint_id {text!r}: '{parts[0]}/' ids need three segments, "
                f"e.g. '{parts[0]}/owner/app'")
        namespace, parts = parts[0], parts[1:]
    owner, alias, rest = parts[0], parts[1], parts[2:]
    prefix = f"{namespace}/" if namespace else ""
    app = f"{prefix}{owner}/{alias}"
    path = "/".join(rest) or None
    full = f"{app}/{path}" if path else app
    return EndpointId(full=full, app=app, namespace=namespace, owner=owner, alias=alias, path=path)


def check_request_id(request_id: str) -> str:
    """Return the request id stripped, or raise InputError when it is empty or unsafe."""
    if not isinstance(request_id, str):
        raise InputError(f"request_id must be a string, got {type(request_id).__name__}")
    text = request_id.strip()
    if not text:
        raise InputError("request_id is empty; pass the id returned by submit_queue_request")
    if not _REQUEST_ID.fullmatch(text):
        raise InputError(
            f"request_id {text!r} is not a valid id (letters, digits, '-', '_', '.'; "
            "e.g. '6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11')")
    return text


@lru_cache(maxsize=2048)
def request_url(queue_base: str, endpoint_id: str, request_id: str) -> str:
    """The result URL of a request (status, stream and cancel append to it)."""
    app = parse_endpoint_id(endpoint_id).app
    return f"{queue_base.rstrip('/')}/{app}/requests/{check_request_id(request_id)}"


def submit_url(queue_base: str, endpoint_id: str) -> str:
    """The submit URL: the whole endpoint id, sub-path kept."""
    return f"{queue_base.rstrip('/')}/{parse_endpoint_id(endpoint_id).full}"
