"""One guarded tool call: scope and budget checks, approval, execution, events and rows.

Used by the agent's tool middleware (the decision comes from a LangGraph interrupt) and by
`AgentRunner.run_tool` (the decision comes straight from the approver), so a slash command
passes exactly the checks a model's call does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import ToolMessage
from langgraph.errors import GraphBubbleUp

from agent.events import ApprovalRequest, Decision, ToolEnd, ToolStart
from agent.gate import ESTIMATE, ToolGate
from agent.planner.refs import estimate_total
from agent.redact import redact_text
from agent.turnlog import TurnLog

Decide = Callable[[ApprovalRequest], Awaitable[Decision]]
Execute = Callable[[dict[str, Any]], Awaitable[ToolMessage]]


def _error_message(call: dict[str, Any], content: str) -> ToolMessage:
    """A ToolMessage the model reads as a failure."""
    return ToolMessage(content=content, name=call["name"], tool_call_id=call["id"], status="error")


def approval_request(gate: ToolGate, call: dict[str, Any]) -> ApprovalRequest:
    """What a human needs to decide: the call, its estimate, the budget left."""
    name, args = call["name"], dict(call.get("args") or {})
    estimate = gate.estimate_for(args) if name == "submit_queue_request" else None
    return ApprovalRequest(call_id=call["id"], name=name, args=args, kind=gate.kind(name),
                           estimate_usd=estimate, budget_left_usd=gate.budget_left_usd)


async def guarded_call(gate: ToolGate, log: TurnLog, call: dict[str, Any], execute: Execute,
                       decide: Decide) -> ToolMessage:
    """Run `call` through every check; always returns a ToolMessage, never raises on tool errors."""
    name = call["name"]
    refusal = gate.refusal(name, call.get("args") or {})
    if refusal is None and gate.needs_approval(name):
        request = approval_request(gate, call)
        decision = await decide(request)
        log.record("approval", {
            "call_id": call["id"], "name": name, "args": request.args, "kind": request.kind,
            "estimate_usd": request.estimate_usd, "budget_left_usd": request.budget_left_usd,
            "decision": decision.action, "edited_args": decision.args, "reason": decision.reason})
        if decision.action == "reject":
            why = f" ({decision.reason})" if decision.reason else ""
            refusal = f"Rejected by the user{why}: {name} was not run. Do not retry it unless the user asks."
        elif decision.action == "edit" and decision.args is not None:
            call = {**call, "args": dict(decision.args)}
            refusal = gate.refusal(name, call["args"])
    args = dict(call.get("args") or {})
    log.emit(ToolStart(call_id=call["id"], name=name, args=args, kind=gate.kind(name)))
    log.record("tool_call", {"call_id": call["id"], "name": name, "args": args, "kind": gate.kind(name)})
    started = time.perf_counter()
    if refusal is not None:
        result = _error_message(call, refusal)
    else:
        try:
            result = await execute(call)
        except GraphBubbleUp:  # LangGraph control flow passes through untouched
            raise
        except Exception as exc:  # noqa: BLE001 - any tool failure goes back to the model
            result = _error_message(call, f"Error: {name} failed: {redact_text(str(exc))}")
    duration = time.perf_counter() - started
    return finish(gate, log, call, result, duration)


def finish(gate: ToolGate, log: TurnLog, call: dict[str, Any], result: Any, duration: float) -> Any:
    """Account for a finished call (budget, ToolEnd event, transcript row) and pass it on."""
    if not isinstance(result, ToolMessage):  # a Command from some tool: nothing to report
        return result
    content = result.content if isinstance(result.content, str) else str(result.content)
    error = result.status == "error" or content.lstrip().startswith("Error")
    args = dict(call.get("args") or {})
    total = estimate_total(result) if call["name"] == ESTIMATE and not error else None
    gate.note_result(call["name"], args, total, error)
    log.emit(ToolEnd(call_id=call["id"], name=call["name"], content=content,
                     artifact=result.artifact, error=error, duration_s=duration))
    data: dict[str, Any] = {"call_id": call["id"], "name": call["name"], "content": content}
    if result.artifact is not None:
        data["artifact"] = _jsonable(result.artifact)
    log.record("tool_error" if error else "tool_result", data, duration_s=duration)
    return result


def _jsonable(value: Any) -> Any:
    """Pydantic models and other objects into plain JSON values."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
