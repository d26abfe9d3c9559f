"""What a tool call came to, read from its structured answer and never from its wording.

A tool answers ``(content, artifact)``: the content is prose for the model; the artifact is
data. A call that did not do what it was asked carries ``{"error": {...}}`` in its artifact
(or, when it never produced one, ``status="error"`` on its ``ToolMessage``). The ``outcome``
key of that error says why:

- ``failed``: the tool ran and fal (or the tool) reported a failure;
- ``refused``: a guard stopped it before it ran (scope, budget, an unknown tool);
- ``rejected``: the person said no at the approval prompt.

Callers (the guard, the planner, webhook rule actions, the UIs) ask :func:`outcome_of`; no
layer looks for an ``Error`` prefix in text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OutcomeKind = Literal["ok", "failed", "refused", "rejected"]
FailureKind = Literal["failed", "refused", "rejected"]


@dataclass(frozen=True)
class ToolOutcome:
    """The outcome of one tool call."""

    kind: OutcomeKind
    error: dict[str, Any] = field(default_factory=dict)
    """The artifact's ``error`` object (empty when the call succeeded)."""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def message(self) -> str:
        return str(self.error.get("message") or "")


def failure_artifact(kind: FailureKind, message: str, *, error_type: str | None = None,
                     **facts: Any) -> dict[str, Any]:
    """The artifact of a call that did not do what was asked: ``{"error": {...}}``."""
    error: dict[str, Any] = {"outcome": kind, "type": error_type or kind, "message": message}
    error.update(facts)
    return {"error": error}


def outcome_of(artifact: Any, status: str | None = None) -> ToolOutcome:
    """The outcome of a call from its artifact and its message status (``"error"`` or not)."""
    error = artifact.get("error") if isinstance(artifact, dict) else None
    if isinstance(error, dict):
        kind = error.get("outcome")
        return ToolOutcome(kind if kind in ("refused", "rejected") else "failed", dict(error))
    if error:  # a bare truthy value: still a failure, just an undescribed one
        return ToolOutcome("failed", {"message": str(error)})
    if status == "error":
        return ToolOutcome("failed")
    return ToolOutcome("ok")


def message_outcome(message: Any) -> ToolOutcome:
    """The outcome of a LangChain ``ToolMessage`` (anything with ``artifact`` and ``status``)."""
    return outcome_of(getattr(message, "artifact", None), getattr(message, "status", None))


def jsonable(value: Any) -> Any:
    """Pydantic models, tuples and other objects as plain JSON values (unknown ones as text)."""
    # The plain JSON types first, by exact type (none of them has a model_dump): a tool's
    # artifact is mostly these, and looking for model_dump on each of its values costs more
    # than the rest of the walk. Subclasses take the general path below.
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def find_field(value: Any, key: str) -> Any:
    """The first truthy value under ``key`` anywhere in nested dicts/lists (or pydantic models)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump()
    if isinstance(value, dict):
        if value.get(key):
            return value[key]
        children: list[Any] = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = find_field(child, key)
        if found:
            return found
    return None


__all__ = ["FailureKind", "OutcomeKind", "ToolOutcome", "failure_artifact", "find_field",
           "jsonable", "message_outcome", "outcome_of"]
