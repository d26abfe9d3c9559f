"""The runner's event stream: what any UI (TUI, CLI) renders.

`AgentRunner.run_turn(...)` yields these, in order, for one user turn. They are plain frozen
dataclasses so that a UI never needs LangChain to draw them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Token", "ToolStart", "ToolProgress", "ToolEnd", "ApprovalRequest", "Decision", "ErrorEvent", "TurnEnd", "Event"
]


@dataclass(frozen=True)
class Token:
    """A piece of the assistant's answer text, as it streams."""

    text: str


@dataclass(frozen=True)
class ToolStart:
    """A tool call begins."""

    call_id: str
    name: str
    args: dict[str, Any]
    kind: str = "read"  # read | spend | destructive


@dataclass(frozen=True)
class ToolProgress:
    """An update from a running tool (e.g. a queue status from the SSE stream)."""

    call_id: str
    name: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ToolEnd:
    """A tool call finished: `content` is what the model sees, `artifact` the full JSON."""

    call_id: str
    name: str
    content: str
    artifact: Any = None
    error: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True)
class ApprovalRequest:
    """The agent wants to run a spend or destructive tool; a decision is needed.

    For a submit, `estimate_usd` is the cost of *this* call (None: cost unknown), reckoned as
    `cost_basis` says from the endpoint's `unit_price_usd` per `unit` (and `per_call_usd`, fal's
    typical price of one call, when the arguments do not say the quantity). The price fields
    let a UI re-price edited arguments with `agent.core.gate.call_cost`."""

    call_id: str
    name: str
    args: dict[str, Any]
    kind: str
    estimate_usd: float | None = None
    budget_left_usd: float | None = None
    cost_basis: str = ""
    unit_price_usd: float | None = None
    unit: str | None = None
    per_call_usd: float | None = None
    warning: str = ""
    """What the approver must know first (a submit of these same arguments may already have
    created a request at fal); a UI shows it above everything else."""
    uploads: list[tuple[str, str, int]] = field(default_factory=list)
    """(field, local path, size in bytes) of each file a submit uploads once approved; its
    URL then replaces the path in the arguments."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """The endpoint schema's defaults for the fields the submit leaves out."""
    schema_note: str = ""
    """Set when no input schema could be had: "no input schema: arguments unchecked (...)"."""


@dataclass(frozen=True)
class Decision:
    """A UI's answer to an ApprovalRequest; `args` replaces the call's arguments on `edit`."""

    action: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None
    reason: str = ""


@dataclass(frozen=True)
class ErrorEvent:
    """Something went wrong; `message` is readable and holds no secrets."""

    message: str
    kind: str = "error"


@dataclass(frozen=True)
class TurnEnd:
    """The turn is over; `answer` is the full assistant text."""

    answer: str
    spent_usd: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False


Event = Token | ToolStart | ToolProgress | ToolEnd | ApprovalRequest | ErrorEvent | TurnEnd
