"""The checks every tool call passes, whoever asked for it (the model or a slash command).

`ToolGate` owns the session's money: which estimates were made, what was spent, what is left.
It refuses a tool outside the persona's scope and a submit without an estimate that fits the
remaining budget; it says which calls need a human's approval.
"""

from __future__ import annotations

from typing import Any

from agent.toolnames import TOOL_KIND

SUBMIT = "submit_queue_request"
ESTIMATE = "estimate_pricing"


def _as_number(value: Any) -> float | None:
    """A float from an int/float/numeric string; None otherwise."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class ToolGate:
    """Scope, budget and approval rules for one session.

    `estimates` maps an endpoint id to the total of the latest successful estimate that
    covered it (the whole total, even when one estimate covered several endpoints: the safe
    side). An approved submit that succeeds adds its endpoint's estimate to `spent_usd`.
    """

    def __init__(self, persona: Any, known_tools: set[str] | None = None) -> None:
        self.persona = persona
        self.known = set(known_tools or ()) | set(TOOL_KIND)
        self.spent_usd = 0.0
        self.estimates: dict[str, float] = {}

    @property
    def budget_usd(self) -> float | None:
        """The persona's cap for this session (None: no cap)."""
        return _as_number(getattr(self.persona, "budget_usd", None))

    @property
    def budget_left_usd(self) -> float | None:
        """What may still be spent in this session."""
        cap = self.budget_usd
        return None if cap is None else max(0.0, round(cap - self.spent_usd, 6))

    def allowed(self) -> list[str]:
        """The persona's tool names."""
        return list(getattr(self.persona, "tools", []) or [])

    def kind(self, name: str) -> str:
        """read / spend / destructive (read for anything unknown)."""
        return TOOL_KIND.get(name, "read")  # type: ignore[return-value]

    def needs_approval(self, name: str) -> bool:
        """True when the persona wants a human's yes before `name` runs."""
        return name in (getattr(self.persona, "approval", None) or [])

    def estimate_for(self, args: dict[str, Any]) -> float | None:
        """The recorded estimate for a submit's endpoint, if any."""
        return self.estimates.get(str(args.get("endpoint_id", "")))

    def refusal(self, name: str, args: dict[str, Any]) -> str | None:
        """Why this call may not run (a message for the model), or None when it may."""
        persona = getattr(self.persona, "name", "this persona")
        if name not in self.known:
            return f"Error: there is no tool named {name!r}. Use one of: {', '.join(self.allowed())}."
        if name not in self.allowed():
            return (f"Error: {name} is outside the scope of the {persona} persona; it was not run. "
                    f"Allowed tools: {', '.join(self.allowed())}.")
        if name == SUBMIT:
            return self._budget_refusal(args)
        return None

    def _budget_refusal(self, args: dict[str, Any]) -> str | None:
        """A submit needs a prior estimate for its endpoint that fits what is left."""
        endpoint = args.get("endpoint_id")
        estimate = self.estimate_for(args)
        if estimate is None:
            return (f"Error: no cost estimate for {endpoint} in this session, so the submit was not "
                    f"run. Call estimate_pricing for {endpoint} first, then submit again.")
        left = self.budget_left_usd
        if left is not None and estimate > left + 1e-9:
            return (f"Error: the estimate for {endpoint} (${estimate:.4f}) is more than the "
                    f"${left:.4f} left of this session's ${self.budget_usd:.2f} budget; nothing was "
                    "submitted. Estimate a smaller job or ask the user.")
        return None

    def note_result(self, name: str, args: dict[str, Any], total: float | None, error: bool) -> None:
        """Learn from a finished call: record estimates, count spending."""
        if error:
            return
        if name == ESTIMATE and total is not None:
            for endpoint in (args.get("endpoints") or {}):
                self.estimates[str(endpoint)] = total
        elif name == SUBMIT:
            self.spent_usd = round(self.spent_usd + (self.estimate_for(args) or 0.0), 6)
