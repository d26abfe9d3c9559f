"""The runner's agent middleware.

* `GuardMiddleware` wraps every tool call: scope guard, budget guard, human approval (a
  LangGraph interrupt the runner answers through the UI's approver), events and transcript.
* `MalformedCallMiddleware` feeds tool calls whose arguments are not JSON back to the model as
  errors, so the loop goes on instead of ending silently.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, hook_config
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.types import interrupt

from agent.core.events import ApprovalRequest, Decision, ToolEnd, ToolStart
from agent.core.gate import ToolGate
from agent.core.guard import guarded_call
from agent.core.media_inputs import SubmitInputs
from agent.core.turnlog import TurnLog
from tools.outcome import failure_artifact

__all__ = ["decision_from", "GuardMiddleware", "MalformedCallMiddleware"]


def decision_from(raw: Any) -> Decision:
    """A Decision from an interrupt's resume value (a dict, or a Decision itself)."""
    if isinstance(raw, Decision):
        return raw
    if isinstance(raw, dict) and raw.get("action") in ("approve", "edit", "reject"):
        return Decision(action=raw["action"], args=raw.get("args"), reason=str(raw.get("reason") or ""))
    return Decision(action="reject", reason="no valid decision was given")


async def _interrupt_decide(request: ApprovalRequest) -> Decision:
    """Pause the graph; the runner resumes it with the approver's answer."""
    return decision_from(interrupt(dataclasses.asdict(request)))


class GuardMiddleware(AgentMiddleware):
    """Every tool call passes the session's `ToolGate` and is reported to the `TurnLog`."""

    def __init__(self, gate: ToolGate, log: TurnLog, webhooks: Any = None,
                 inputs: SubmitInputs | None = None) -> None:
        super().__init__()
        self.gate = gate
        self.log = log
        self.webhooks = webhooks  # the running webhook listener, attached to submits
        self.inputs = inputs  # a submit's schema check and local-file uploads

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        async def execute(call: dict[str, Any]) -> Any:
            if call is request.tool_call:
                return await handler(request)
            return await handler(request.override(tool_call=call))

        return await guarded_call(self.gate, self.log, request.tool_call, execute, _interrupt_decide,
                                  self.webhooks, self.inputs)


def _json_problem(raw: str) -> str | None:
    """Why `raw` is not a JSON object, or None when it is one."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})"
    except ValueError as exc:  # not a syntax error: a number too long to convert, say
        return f"the arguments are not valid JSON ({exc})"
    return None if isinstance(value, dict) else "the arguments must be a JSON object"


def _malformed_text(call: dict[str, Any]) -> str:
    """What the model reads about a call whose arguments could not be parsed."""
    error = str(call.get("error") or "the arguments are not valid JSON")
    args = str(call.get("args") or "")[:200]
    return (f"Error: the call to {call.get('name') or 'an unnamed tool'} was not run: {error}. "
            f"Arguments received: {args!r}. Send the arguments again as one JSON object.")


class MalformedCallMiddleware(AgentMiddleware):
    """Answers invalid tool calls with an error ToolMessage and sends the model round again."""

    def __init__(self, log: TurnLog, raw_args: Callable[[str | None], str | None] | None = None) -> None:
        super().__init__()
        self.log = log
        self.raw_args = raw_args

    def _strict(self, message: AIMessage) -> AIMessage:
        """Move streamed calls whose raw arguments are not a JSON object to invalid_tool_calls."""
        if self.raw_args is None or not message.tool_calls:
            return message
        good, bad = [], []
        for tc in message.tool_calls:
            raw = self.raw_args(tc.get("id"))
            problem = _json_problem(raw) if raw is not None and raw.strip() else None
            if problem is None:
                good.append(tc)
            else:
                bad.append({"type": "invalid_tool_call", "id": tc.get("id"), "name": tc["name"],
                            "args": raw, "error": problem})
        if not bad:
            return message
        return message.model_copy(update={"tool_calls": good,
                                          "invalid_tool_calls": [*message.invalid_tool_calls, *bad]})

    @hook_config(can_jump_to=["model"])
    async def aafter_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        last = state["messages"][-1] if state.get("messages") else None
        if not isinstance(last, AIMessage):
            return None
        checked = self._strict(last) if last.id else last  # no id: it could not be replaced
        if not checked.invalid_tool_calls:
            return None
        # The same id replaces the model's message in the state, with the bad calls moved.
        replies: list[Any] = [checked] if checked is not last else []
        last = checked
        for i, call in enumerate(last.invalid_tool_calls):
            call_id = call.get("id") or f"invalid_{len(state['messages'])}_{i}"
            text = _malformed_text(dict(call))
            name = call.get("name") or "unknown"
            self.log.emit(ToolStart(call_id=call_id, name=name, args={}, kind="read"))
            self.log.emit(ToolEnd(call_id=call_id, name=name, content=text, error=True))
            self.log.record("tool_error", {"call_id": call_id, "name": name, "content": text,
                                           "raw_args": str(call.get("args") or "")})
            replies.append(ToolMessage(content=text, name=name, tool_call_id=call_id, status="error",
                                       artifact=failure_artifact("failed", text, error_type="InputError")))
        update: dict[str, Any] = {"messages": replies}
        if not last.tool_calls:  # nothing else to run: go straight back to the model
            update["jump_to"] = "model"
        return update
