"""The one list of fal.ai tools: what each is called, what it does to the world, what it takes.

Everything that needs to know about a tool reads it here: the catalogue builds the LangChain
tools from it, personas check their tool lists against it, the guard and the approval gate
ask it which calls spend or destroy, the TUI asks which calls concern a queue job or may carry
media, and webhook rule actions ask which tools take a request id.

Kinds:

- ``read``: only looks (search, prices, status, results, keys);
- ``spend``: costs money (a submit);
- ``destructive``: undoes work (a cancel);
- ``upload``: free, but sends a local file off this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from tools import schemas as S

ToolKind = Literal["read", "spend", "destructive", "upload"]

SUBMIT = "submit_queue_request"
CANCEL = "cancel_queue_request"
STATUS = "get_queue_status"
STREAM = "stream_queue_status"
RESULT = "get_queue_result"
UPLOAD = "upload_file"


@dataclass(frozen=True)
class ToolInfo:
    """One tool's static facts."""

    name: str
    kind: ToolKind
    schema: type[BaseModel]
    description: str
    takes_request_id: bool = False
    """Its arguments name one queued request (endpoint_id + request_id)."""
    job: bool = False
    """It creates or concerns a queue job (the TUI keeps a job row for it)."""
    media: bool = False
    """Its answer may carry result media (image/video/audio URLs)."""
    optional: bool = False
    """Built only when asked for (see ``tools.catalog.build_fal_tools``)."""

    @property
    def guarded(self) -> bool:
        """Spends, destroys or sends something out: approval is the safe default."""
        return self.kind != "read"


REGISTRY: dict[str, ToolInfo] = {info.name: info for info in (
    ToolInfo("search_models", "read", S.SearchArgs,
             "Search the fal.ai model catalogue by text, category or status, or look up exact "
             "endpoint ids. Returns a table (endpoint id, name, category, status) and a cursor "
             "for more pages."),
    ToolInfo("get_pricing", "read", S.PricingArgs,
             "Get the unit price (e.g. USD per image or per second) of 1-50 fal.ai endpoints."),
    ToolInfo("estimate_pricing", "read", S.EstimateArgs,
             "Estimate the total cost of running fal.ai endpoints, by number of calls "
             "(historical_api_price) or by billing units (unit_price). Spends nothing."),
    ToolInfo(STATUS, "read", S.StatusArgs,
             "Check once whether a queued fal.ai request is IN_QUEUE (with position), "
             "IN_PROGRESS or COMPLETED. A failed request also shows as COMPLETED, with its "
             "error.", takes_request_id=True, job=True),
    ToolInfo(STREAM, "read", S.StreamArgs,
             "Follow a queued fal.ai request live until it COMPLETES (or timeout_s passes), "
             "reporting each update as it arrives. Returns the final status.",
             takes_request_id=True, job=True, media=True),
    ToolInfo(RESULT, "read", S.RequestArgs,
             "Fetch the output of a COMPLETED fal.ai request (image/video URLs and JSON). If "
             "the request failed, says so plainly and shows fal's error body.",
             takes_request_id=True, job=True, media=True),
    ToolInfo("get_webhook_jwks", "read", S.JwksArgs,
             "Fetch the public keys (JWKS) fal.ai signs webhooks with, to verify deliveries."),
    ToolInfo(SUBMIT, "spend", S.SubmitArgs,
             "Queue a new request on a fal.ai model. THIS COSTS MONEY. Returns the request_id "
             "to use with the status, result and cancel tools.", job=True),
    ToolInfo(CANCEL, "destructive", S.RequestArgs,
             "Cancel a queued fal.ai request. Outcomes: requested (a request near the front "
             "may still run), already completed (nothing to cancel), or not found.",
             takes_request_id=True, job=True),
    ToolInfo(UPLOAD, "upload", S.UploadArgs,
             "Upload one local file (image, audio, video, archive) to fal.ai's CDN and get its "
             "URL, to pass in a model's media field such as image_url. Free, but the file "
             "leaves this machine. Returns the URL, size and content type.", optional=True),
)}

DEFAULT_TOOLS: tuple[str, ...] = tuple(n for n, i in REGISTRY.items() if not i.optional)
"""The tools built by default, in the order a request usually flows (UIs list them so)."""
ALL_TOOLS: tuple[str, ...] = tuple(REGISTRY)
OPTIONAL_TOOLS: tuple[str, ...] = tuple(n for n, i in REGISTRY.items() if i.optional)
TOOL_KINDS: dict[str, ToolKind] = {n: i.kind for n, i in REGISTRY.items()}
READ_TOOLS: frozenset[str] = frozenset(n for n, i in REGISTRY.items() if i.kind == "read")
GUARDED_TOOLS: frozenset[str] = frozenset(n for n, i in REGISTRY.items() if i.guarded)
JOB_TOOLS: frozenset[str] = frozenset(n for n, i in REGISTRY.items() if i.job)
MEDIA_TOOLS: frozenset[str] = frozenset(n for n, i in REGISTRY.items() if i.media)
REQUEST_ID_TOOLS: frozenset[str] = frozenset(n for n, i in REGISTRY.items() if i.takes_request_id)


def tool_info(name: str) -> ToolInfo:
    """The facts of a known tool; ``KeyError`` for an unknown name."""
    return REGISTRY[name]


def tool_kind(name: str) -> ToolKind:
    """The kind of a known tool; ``KeyError`` for an unknown name."""
    return REGISTRY[name].kind


__all__ = [
    "ALL_TOOLS", "CANCEL", "DEFAULT_TOOLS", "GUARDED_TOOLS", "JOB_TOOLS", "MEDIA_TOOLS",
    "OPTIONAL_TOOLS", "READ_TOOLS", "REGISTRY", "REQUEST_ID_TOOLS", "RESULT", "STATUS", "STREAM",
    "SUBMIT", "TOOL_KINDS", "UPLOAD", "ToolInfo", "ToolKind", "tool_info", "tool_kind",
]
