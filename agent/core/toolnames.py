"""The nine fal.ai tool names and their kinds, in one place.

`read` tools only look; `spend` costs money; `destructive` undoes work. Personas, the runner's
approval and scope guards, and the UIs all read these constants instead of spelling names out.
"""

from __future__ import annotations

from typing import Literal

ToolKind = Literal["read", "spend", "destructive"]

TOOL_KIND: dict[str, ToolKind] = {
    "search_models": "read",
    "get_pricing": "read",
    "estimate_pricing": "read",
    "get_queue_status": "read",
    "stream_queue_status": "read",
    "get_queue_result": "read",
    "get_webhook_jwks": "read",
    "submit_queue_request": "spend",
    "cancel_queue_request": "destructive",
}

# The order a request usually flows in; UIs list tools this way.
ALL_TOOLS: tuple[str, ...] = tuple(TOOL_KIND)

READ_TOOLS: frozenset[str] = frozenset(n for n, k in TOOL_KIND.items() if k == "read")
GUARDED_TOOLS: frozenset[str] = frozenset(n for n, k in TOOL_KIND.items() if k != "read")
"""Tools that spend or destroy: approval is the safe default for these."""


def tool_kind(name: str) -> ToolKind:
    """The kind of a known tool; KeyError for an unknown name."""
    return TOOL_KIND[name]
