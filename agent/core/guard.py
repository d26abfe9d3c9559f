"""One guarded tool call: scope and budget checks, approval, execution, events and rows.

Used by the agent's tool middleware (the decision comes from a LangGraph interrupt) and by
`AgentRunner.run_tool` (the decision comes straight from the approver), so a slash command
passes exactly the checks a model's call does.

When a webhook listener runs, a `submit_queue_request` that names no `webhook_url` gets the
listener's URL before approval (so the approver sees it), and the submitted job's endpoint is
recorded so the listener can match the event to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langchain_core.messages import ToolMessage
from langgraph.errors import GraphBubbleUp

from agent.core.events import ApprovalRequest, Decision, ToolEnd, ToolProgress, ToolStart
from agent.core.gate import ESTIMATE, CallCost, ToolGate, estimate_total
from agent.core.media_inputs import InputsFailed, InputsRefused, SubmitInputs, SubmitPlan, upload_rows
from agent.core.turnlog import TurnLog
from agent.redact import redact, redact_text
from tools.outcome import FailureKind, failure_artifact, jsonable, message_outcome
from tools.registry import SUBMIT, UPLOAD

__all__ = [
    "REPEAT_WARNING", "REPEAT_REFUSED", "Decide", "Execute", "with_webhook", "record_submission", "approval_request",
    "guarded_call", "finish"
]


log = logging.getLogger(__name__)

REPEAT_WARNING = ("The previous submit of these same arguments may have been created at fal (its "
                  "answer was lost), and may be running and billed already. Submit again?")
REPEAT_REFUSED = ("The previous submit of these same arguments may have been created at fal: do not "
                  "submit them again. Tell the user, who can check fal's dashboard or wait for its webhook.")

Decide = Callable[[ApprovalRequest], Awaitable[Decision]]
Execute = Callable[[dict[str, Any]], Awaitable[ToolMessage]]
_R = TypeVar("_R")


def with_webhook(call: dict[str, Any], webhooks: Any) -> dict[str, Any]:
    """`call` with the listener's URL as `webhook_url` when it is a submit that names none."""
    args = call.get("args")
    if webhooks is None or call.get("name") != SUBMIT or not isinstance(args, dict) or args.get("webhook_url"):
        return call
    endpoint = args.get("endpoint_id")
    try:
        url = webhooks.webhook_url(endpoint if isinstance(endpoint, str) and endpoint else None)
    except Exception:  # a listener problem must not block the submit itself
        log.warning("no webhook URL for this submit: the listener failed", exc_info=True)
        return call
    return {**call, "args": {**args, "webhook_url": url}}


async def record_submission(webhooks: Any, call: dict[str, Any], result: Any) -> None:
    """Tell the listener which endpoint a successful submit ran on (best effort)."""
    if webhooks is None or call.get("name") != SUBMIT or not isinstance(result, ToolMessage):
        return
    artifact, endpoint = result.artifact, (call.get("args") or {}).get("endpoint_id")
    request_id = artifact.get("request_id") if isinstance(artifact, dict) else getattr(artifact, "request_id", None)
    if result.status == "error" or not request_id or not isinstance(endpoint, str):
        return
    try:  # an fsync'd SQLite write: off the loop
        await asyncio.to_thread(webhooks.record_submission, str(request_id), endpoint)
    except Exception:  # the URL carries the endpoint too; nothing is lost
        log.warning("could not record the endpoint of %s with the listener", request_id, exc_info=True)


def _error_message(call: dict[str, Any], content: str, kind: FailureKind,
                   error_type: str | None = None, **facts: Any) -> ToolMessage:
    """A ToolMessage the model reads as a failure, with a typed outcome for everyone else."""
    return ToolMessage(content=content, name=call["name"], tool_call_id=call["id"], status="error",
                       artifact=failure_artifact(kind, content, error_type=error_type, **facts))


def approval_request(gate: ToolGate, call: dict[str, Any], cost: CallCost | None = None,
                     warning: str = "", plan: SubmitPlan | None = None) -> ApprovalRequest:
    """What a human needs to decide: the call, the cost of this call, the budget left (and a
    `warning` to read first); for a submit, the local files it will upload, the schema's
    defaults, or that no schema could check it (`plan`). The arguments shown are redacted:
    an approver never sees a key."""
    name, args = call["name"], redact(dict(call.get("args") or {}))
    extra: dict[str, Any] = {}
    if plan is not None:
        extra = {"uploads": upload_rows(plan), "defaults": redact(dict(plan.defaults)),
                 "schema_note": plan.schema_note}
    if cost is None:
        return ApprovalRequest(call_id=call["id"], name=name, args=args, kind=gate.kind(name),
                               budget_left_usd=gate.budget_left_usd, warning=warning, **extra)
    price = gate.prices.get(str(args.get("endpoint_id") or ""))
    return ApprovalRequest(call_id=call["id"], name=name, args=args, kind=gate.kind(name),
                           estimate_usd=cost.usd, budget_left_usd=gate.budget_left_usd,
                           cost_basis=cost.basis, unit_price_usd=price.unit_price if price else None,
                           unit=price.unit if price else None,
                           per_call_usd=price.per_call_usd if price else None, warning=warning, **extra)


async def _planned(inputs: SubmitInputs | None, name: str,
                   args: dict[str, Any]) -> tuple[SubmitPlan | None, InputsRefused | None]:
    """A submit's inputs checked against the endpoint's schema (None when there is no client)."""
    if inputs is None or name != SUBMIT:
        return None, None
    try:
        return await inputs.plan(args), None
    except InputsRefused as refused:
        return None, refused


async def _checked(gate: ToolGate, name: str, args: dict[str, Any]) -> tuple[str | None, CallCost | None]:
    """(why the call may not run or None, the submit's cost or None): scope, price, budget."""
    refusal = gate.refusal(name, args)
    if refusal is not None or name != SUBMIT:
        return refusal, None
    cost = await gate.cost_of(args)
    return gate.refusal(name, args, cost), cost


async def guarded_call(gate: ToolGate, log: TurnLog, call: dict[str, Any], execute: Execute,
                       decide: Decide, webhooks: Any = None,
                       inputs: SubmitInputs | None = None) -> ToolMessage:
    """Run `call` through every check; always returns a ToolMessage, never raises on tool errors.

    A submit is priced first (the gate fetches a price it does not know), its cost checked
    against the budget, its arguments against the endpoint's input schema (`inputs`: refused
    before approval when they do not fit), shown for approval with the local files it will
    upload, and re-priced and re-checked when the approver edits its arguments; once approved
    its local files are uploaded and replaced by their URLs. What the session is charged is
    the cost of the call that ran. `webhooks` is the running listener (`webhook_url`,
    `record_submission`) or None."""
    call = with_webhook(call, webhooks)
    name = call["name"]
    turn = int(getattr(log, "turn", 0))
    refusal, cost = await _checked(gate, name, call.get("args") or {})
    plan, refused = await _planned(inputs, name, call.get("args") or {}) if refusal is None else (None, None)
    # The same submit again after one whose answer was lost: fal may have created the first,
    # so this one is asked about (whatever the persona's approval rules), saying so.
    repeat = refusal is None and refused is None and name == SUBMIT and gate.may_exist(call.get("args") or {}, turn)
    rejected = False
    uploading = plan is not None and bool(plan.uploads) and gate.needs_approval(UPLOAD)
    if refusal is None and refused is None and (repeat or uploading or gate.needs_approval(name)):
        request = approval_request(gate, call, cost, warning=REPEAT_WARNING if repeat else "", plan=plan)
        decision = await decide(request)
        row = {"call_id": call["id"], "name": name, "args": request.args, "kind": request.kind,
               "estimate_usd": request.estimate_usd, "cost_basis": request.cost_basis,
               "budget_left_usd": request.budget_left_usd,
               "decision": decision.action, "edited_args": decision.args, "reason": decision.reason}
        if repeat:
            row["warning"] = request.warning
        if decision.action == "reject":
            rejected = True
            why = f" ({decision.reason})" if decision.reason else ""
            refusal = (f"Rejected by the user{why}: {name} was not run. " + (
                REPEAT_REFUSED if repeat else "Do not retry it unless the user asks."))
        elif decision.action == "edit" and decision.args is not None:
            call = {**call, "args": dict(decision.args)}
            refusal, cost = await _checked(gate, name, call["args"])
            plan, refused = await _planned(inputs, name, call["args"]) if refusal is None else (None, None)
            if cost is not None:
                row.update(edited_estimate_usd=cost.usd, edited_cost_basis=cost.basis)
        if plan is not None and plan.uploads:
            row["uploads"] = upload_rows(plan)
        log.record("approval", row)
    args = dict(call.get("args") or {})
    log.emit(ToolStart(call_id=call["id"], name=name, args=args, kind=gate.kind(name)))
    started_row: dict[str, Any] = {"call_id": call["id"], "name": name, "args": args, "kind": gate.kind(name)}
    if plan is not None and plan.uploads:
        started_row["uploads"] = upload_rows(plan)
    log.record("tool_call", started_row)
    started = time.perf_counter()
    if refusal is not None:
        result = _error_message(call, refusal, "rejected" if rejected else "refused")
    elif refused is not None:
        result = _error_message(call, refused.message, "refused", refused.error_type, **refused.facts)
    else:
        try:
            sent = call
            if plan is not None and plan.uploads and inputs is not None:
                sent = await _upload_inputs(inputs, log, call, plan)
            result = await execute(sent)
        except GraphBubbleUp:  # LangGraph control flow passes through untouched
            raise
        except InputsFailed as exc:  # an upload failed: nothing was submitted
            result = _error_message(call, redact_text(str(exc)), "failed", "UploadFailed")
        except Exception as exc:  # any tool failure goes back to the model
            result = _error_message(call, f"Error: {name} failed: {redact_text(str(exc))}", "failed")
        await record_submission(webhooks, call, result)
    duration = time.perf_counter() - started
    return finish(gate, log, call, result, duration, cost, turn=turn)


async def _upload_inputs(inputs: SubmitInputs, log: TurnLog, call: dict[str, Any],
                         plan: SubmitPlan) -> dict[str, Any]:
    """The approved submit with its local files uploaded and their URLs in place; each file
    is reported as it lands (a progress event, and a transcript row with its name, size and
    URL, never its bytes). The call kept for accounting is `call` itself, with its paths, so a
    repeat of it is still recognised."""
    def landed(record: dict[str, Any]) -> None:
        data = {"status": "UPLOADED", "upload": record,
                "logs": [{"message": f"uploaded {record['field']}: {record['file_name']} "
                                     f"({record['size']} bytes, {record['parts']} part(s))"}]}
        log.emit(ToolProgress(call_id=call["id"], name=call["name"], data=data))
        log.record("tool_progress", {"call_id": call["id"], "name": call["name"], "data": data})

    args, _ = await inputs.upload(dict(call.get("args") or {}), plan, on_done=landed)
    return {**call, "args": args}


def finish(gate: ToolGate, log: TurnLog, call: dict[str, Any], result: _R, duration: float,
           cost: CallCost | None = None, turn: int = 0) -> _R:
    """Account for a finished call (prices learned, a submit's `cost` spent, ToolEnd event,
    transcript row) and pass it on."""
    if not isinstance(result, ToolMessage):  # a Command from some tool: nothing to report
        return result
    content = result.content if isinstance(result.content, str) else str(result.content)
    error = not message_outcome(result).ok
    args = dict(call.get("args") or {})
    total = estimate_total(result) if call["name"] == ESTIMATE and not error else None
    gate.note_result(call["name"], args, total, error, cost=cost, artifact=result.artifact, turn=turn)
    log.emit(ToolEnd(call_id=call["id"], name=call["name"], content=content,
                     artifact=result.artifact, error=error, duration_s=duration))
    data: dict[str, Any] = {"call_id": call["id"], "name": call["name"], "content": content}
    if result.artifact is not None:
        data["artifact"] = jsonable(result.artifact)
    if cost is not None and not error:
        data["cost_usd"] = cost.usd
    log.record("tool_error" if error else "tool_result", data, duration_s=duration)
    return result
