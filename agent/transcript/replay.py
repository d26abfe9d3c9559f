"""Reopening a conversation from its transcript: what the agent saw, and what the screen showed.

Why the transcript, and not LangGraph's checkpointer: the transcript already holds, committed
before the UI showed it, every user prompt, model reply (text and tool calls, with their ids),
tool result, approval and persona switch. A checkpointer would keep a second copy of the same
conversation in another schema, and the two could disagree after a crash (the runner drops
each turn's checkpoints; the transcript is append-only and survives `kill -9`). So the
transcript is the one source of truth, and `replay(events)` rebuilds from it:

* `messages`: the LangChain history the agent had (user prompts, AI messages with their tool
  calls, tool results with their artifacts), each tool call paired with exactly one result
  right after its AI message, as the OpenAI API requires. A call the app died during gets a
  "not finished" result; a call whose approval was pending gets none yet (see `pending`).
* `shown`: what the chat showed, in order (prompts, answers, tool cards, notices, errors,
  result previews), and `jobs`: each queue request's last known state.
* `pending`: approvals that were asked and never answered (the app died with the modal
  open). They are not lost and not approved: the UI asks again, and only a yes runs them.

Two event kinds exist for this: `approval_request` (recorded when an approval is asked, before
the UI shows it) and `job_state` (a job's outcome the UI learned outside a tool call: from a
background follower or a webhook). Pure functions over `TranscriptStore.events()` rows.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal

# The registry's facts replay needs, spelled out: `tools.registry` imports pydantic (~0.1 s),
# which a reopened chat's first paint should not wait for. tests/resume checks they match it.
SUBMIT = "submit_queue_request"
CANCEL = "cancel_queue_request"
RESULT = "get_queue_result"
JOB_TOOLS: frozenset[str] = frozenset({"get_queue_status", "stream_queue_status", RESULT, SUBMIT, CANCEL})
"""Tools that create or concern a queue job (the registry's `job`)."""
MEDIA_TOOLS: frozenset[str] = frozenset({"stream_queue_status", RESULT})
"""Tools whose answer may carry result media (the registry's `media`)."""

NOT_FINISHED = ("Not finished: the app stopped while this call ran, so its result is unknown. "
                "Check the request's status before retrying it.")
NOT_RUN = "Not run: the turn was stopped."
ShownKind = Literal["user", "answer", "tool", "notice", "error", "media"]


@dataclass
class Shown:
    """One thing the chat showed. `kind` says which fields matter:

    user/answer/notice/error: `text` (notice: `tag` is its style); tool: `call_id`, `name`,
    `args`, `tool_kind`, `content`, `artifact`, `error`, `duration_s`, `done`; media:
    `artifact` (the result holding the media), `endpoint_id`, `request_id`."""

    kind: ShownKind
    text: str = ""
    tag: str = "info"
    call_id: str = ""
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    tool_kind: str = "read"
    content: str = ""
    artifact: Any = None
    error: bool = False
    duration_s: float = 0.0
    done: bool = True
    endpoint_id: str = ""
    request_id: str = ""


@dataclass
class JobState:
    """A queue request's last recorded state (the jobs panel's row)."""

    request_id: str
    endpoint_id: str = ""
    status: str = "SUBMITTED"
    queue_position: int | None = None
    outcome: str = ""
    """"", completed, failed or cancelled."""
    result: Any = None
    note: str = ""
    submitted: bool = False


@dataclass(frozen=True)
class PendingApproval:
    """An approval that was asked and not answered: the call to put to the user again.

    `source` is `model` (a tool call of the agent, answered then by continuing the turn) or
    `slash` (a slash command)."""

    call_id: str
    name: str
    args: dict[str, Any]
    kind: str
    source: str = "model"


@dataclass
class Replay:
    """A conversation rebuilt from its transcript (see the module docstring)."""

    session_id: str
    messages: list[Any] = field(default_factory=list)
    shown: list[Shown] = field(default_factory=list)
    jobs: dict[str, JobState] = field(default_factory=dict)
    pending: list[PendingApproval] = field(default_factory=list)
    persona: str | None = None
    spent_usd: float = 0.0
    turns: int = 0
    title: str = ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in value)
    return "" if value is None else str(value)


def _calls(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A model_response's tool calls as LangChain ToolCall dicts."""
    out = []
    for c in data.get("tool_calls") or []:
        if isinstance(c, dict) and c.get("name"):
            args = c.get("args") if isinstance(c.get("args"), dict) else {}
            out.append({"name": str(c["name"]), "args": args, "id": str(c.get("id") or ""), "type": "tool_call"})
    return out


def _invalid(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in data.get("invalid_tool_calls") or []:
        if isinstance(c, dict):
            out.append({"name": c.get("name"), "args": c.get("args") if isinstance(c.get("args"), str) else None,
                        "id": c.get("id"), "error": c.get("error"), "type": "invalid_tool_call"})
    return out


class _Builder:
    """Walks the events once, in order."""

    def __init__(self, session_id: str, messages: bool = True) -> None:
        self.r = Replay(session_id)
        self.with_messages = messages
        self.asked: dict[str, PendingApproval] = {}
        self.cards: dict[str, Shown] = {}
        self.previewed: set[str] = set()
        self.turn_answers: list[str] = []

    # -- jobs ---------------------------------------------------------------------------------
    def job(self, rid: str, endpoint: str) -> JobState:
        row = self.r.jobs.get(rid)
        if row is None:
            row = self.r.jobs[rid] = JobState(rid, endpoint)
        if endpoint and not row.endpoint_id:
            row.endpoint_id = endpoint
        return row

    def preview(self, result: Any, endpoint: str, rid: str) -> None:
        from agent.media import find_media, text_result

        if rid in self.previewed or not (find_media(result, limit=1) or text_result(result) is not None):
            return
        self.previewed.add(rid)
        self.r.shown.append(Shown("media", artifact=result, endpoint_id=endpoint, request_id=rid))

    def tool_job(self, card: Shown) -> None:
        """What a finished job tool call says about its job (as the TUI's turn renderer reads it)."""
        art = card.artifact if isinstance(card.artifact, dict) else {}
        rid = art.get("request_id") or card.args.get("request_id")
        endpoint = str(card.args.get("endpoint_id") or art.get("endpoint_id") or "")
        if not isinstance(rid, str) or not rid:
            return
        if card.name == SUBMIT:
            if card.error:
                return
            row = self.job(rid, endpoint)
            row.submitted = True
            row.status = str(art.get("status") or "IN_QUEUE")
            return
        if rid not in self.r.jobs and card.error:
            return
        row = self.job(rid, endpoint)
        if card.error:
            if card.name == RESULT:
                row.outcome, row.status, row.note = "failed", "ERROR", card.content
            else:
                row.note = card.content
        elif card.name == RESULT:
            row.outcome, row.status, row.result = "completed", "COMPLETED", card.artifact
        elif card.name == CANCEL:
            if art.get("outcome") == "requested" and not row.outcome:
                row.status = "CANCELLATION_REQUESTED"
            row.note = card.content
        elif art.get("status") and not row.outcome:
            row.status = str(art["status"])
            qp = art.get("queue_position")
            row.queue_position = qp if isinstance(qp, int) else None
        if card.name in MEDIA_TOOLS and not card.error:
            self.preview(card.artifact, endpoint, rid)

    # -- events -------------------------------------------------------------------------------
    def event(self, ev: dict[str, Any]) -> None:
        kind, data = ev.get("kind"), ev.get("data") or {}
        if ev.get("persona"):
            self.r.persona = ev["persona"]
        handler = getattr(self, "on_" + str(kind), None)
        if handler is not None:
            handler(data, ev)

    def on_user_prompt(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        text = _text(data.get("text"))
        self.asked.clear()  # a new turn: approvals left open before it were answered or dropped
        self.turn_answers = []
        self.r.turns += 1
        if not self.r.title:
            self.r.title = " ".join(text.split())[:200]
        self.r.shown.append(Shown("user", text))
        if not data.get("slash") and self.with_messages:
            from langchain_core.messages import HumanMessage

            self.r.messages.append(HumanMessage(text))

    def on_model_response(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        content = _text(data.get("content"))
        if self.with_messages:
            from langchain_core.messages import AIMessage

            calls, invalid = _calls(data), _invalid(data)
            self.r.messages.append(AIMessage(content=content, tool_calls=calls, invalid_tool_calls=invalid))
        if content.strip():
            self.r.shown.append(Shown("answer", content))
            self.turn_answers.append(content)

    def on_approval_request(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        call_id = str(data.get("call_id") or "")
        if call_id:
            self.asked[call_id] = PendingApproval(call_id, str(data.get("name") or ""),
                                                  dict(data.get("args") or {}), str(data.get("kind") or "read"),
                                                  str(data.get("source") or "model"))

    def on_approval(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        self.asked.pop(str(data.get("call_id") or ""), None)
        verb = {"approve": "approved", "edit": "approved with edited arguments", "reject": "rejected"}
        action = str(data.get("decision") or "")
        self.r.shown.append(Shown("notice", f"{verb.get(action, action)}: {data.get('name')}", tag=action))

    def on_tool_call(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        call_id = str(data.get("call_id") or "")
        self.asked.pop(call_id, None)
        card = Shown("tool", call_id=call_id, name=str(data.get("name") or "?"),
                     args=dict(data.get("args") or {}), tool_kind=str(data.get("kind") or "read"),
                     done=False, content=NOT_FINISHED, error=True)
        self.cards[call_id] = card
        self.r.shown.append(card)
        if self.with_messages and call_id.startswith("slash_") and not self._in_ai(call_id):
            # A slash command's call has no model reply: the runner adds one to the history.
            from langchain_core.messages import AIMessage

            self.r.messages.append(AIMessage(content="", tool_calls=[
                {"name": card.name, "args": card.args, "id": call_id, "type": "tool_call"}]))

    def _in_ai(self, call_id: str) -> bool:
        from langchain_core.messages import AIMessage

        for m in reversed(self.r.messages):
            if isinstance(m, AIMessage):
                return any(c.get("id") == call_id for c in m.tool_calls)
        return False

    def on_tool_result(self, data: dict[str, Any], ev: dict[str, Any], error: bool = False) -> None:
        call_id = str(data.get("call_id") or "")
        content = _text(data.get("content"))
        artifact = data.get("artifact")
        self.asked.pop(call_id, None)
        if self.with_messages:
            from langchain_core.messages import ToolMessage

            self.r.messages.append(ToolMessage(content=content, tool_call_id=call_id, name=str(data.get("name") or ""),
                                               status="error" if error else "success", artifact=artifact))
        if not error and data.get("name") == SUBMIT and isinstance(data.get("cost_usd"), (int, float)):
            self.r.spent_usd = round(self.r.spent_usd + float(data["cost_usd"]), 6)
        card = self.cards.get(call_id)
        if card is None:  # e.g. a malformed call, answered without a tool_call row
            card = Shown("tool", call_id=call_id, name=str(data.get("name") or "?"))
            self.cards[call_id] = card
            self.r.shown.append(card)
        card.done, card.content, card.artifact, card.error = True, content, artifact, error
        card.duration_s = float(ev.get("duration_s") or 0.0)
        if card.name in JOB_TOOLS:
            self.tool_job(card)
        if call_id.startswith("slash_") and content.strip():
            self.r.shown.append(Shown("answer", content))  # a slash command's answer is its result

    def on_tool_error(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        self.on_tool_result(data, ev, error=True)

    def on_tool_progress(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        raw = data.get("data")
        payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        card = self.cards.get(str(data.get("call_id") or ""))
        rid = payload.get("request_id") or (card.args.get("request_id") if card else None)
        if isinstance(rid, str) and rid and payload.get("status"):
            row = self.job(rid, str(payload.get("endpoint_id") or (card.args.get("endpoint_id") if card else "") or ""))
            if not row.outcome:
                row.status = str(payload["status"])

    def on_job_state(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        rid = str(data.get("request_id") or "")
        if not rid:
            return
        endpoint = str(data.get("endpoint_id") or "")
        row = self.job(rid, endpoint)
        outcome = str(data.get("outcome") or "")
        if outcome:
            row.outcome = outcome
            row.status = {"completed": "COMPLETED", "failed": "ERROR", "cancelled": "CANCELLED"}.get(outcome, row.status)
        elif data.get("status"):
            row.status = str(data["status"])
        if data.get("result") is not None:
            row.result = data["result"]
        if data.get("summary"):
            row.note = str(data["summary"])
        if outcome == "completed" and row.result is not None:
            self.preview(row.result, row.endpoint_id, rid)

    def on_answer(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        self.asked.clear()  # the turn ended: nothing in it is waiting any more
        text = _text(data.get("text"))
        if text.strip() and text not in self.turn_answers:
            self.r.shown.append(Shown("answer", text))

    def on_error(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        self.asked.clear()
        if data.get("kind") == "cancelled":
            self.r.shown.append(Shown("notice", "cancelled", tag="cancelled"))
        elif data.get("message"):
            self.r.shown.append(Shown("error", _text(data.get("message"))))

    def on_persona_switch(self, data: dict[str, Any], ev: dict[str, Any]) -> None:
        self.r.persona = str(data.get("to") or self.r.persona or "")
        self.r.shown.append(Shown("notice", f"persona: {data.get('to')}", tag="persona"))

    def finish(self) -> Replay:
        for card in self.cards.values():
            if not card.done:
                card.content = NOT_FINISHED if card.call_id not in self.asked else "waiting for approval"
        self.r.pending = list(self.asked.values())
        if self.with_messages:
            waiting = {p.call_id for p in self.r.pending if p.source == "model"}
            self.r.messages = paired(self.r.messages, waiting)
        return self.r


def replay(session_id: str, events: list[dict[str, Any]], *, messages: bool = True) -> Replay:
    """Rebuild a conversation from its transcript events (oldest first); `messages=False`
    skips the agent's history (for a screen that only shows the chat, without LangChain)."""
    builder = _Builder(session_id, messages)
    for ev in events:
        builder.event(ev)
    return builder.finish()


def paired(messages: list[Any], waiting: AbstractSet[str] = frozenset()) -> list[Any]:
    """The history with every tool call answered once, right after its AI message.

    Results are moved up to their call; a result with no call before it is dropped (the API
    refuses it); a call with no result gets NOT_FINISHED (NOT_RUN when a later turn began),
    except calls in `waiting` at the very end of the history (a pending approval's)."""
    from langchain_core.messages import AIMessage, ToolMessage

    results: dict[str, Any] = {}
    for m in messages:
        if isinstance(m, ToolMessage) and m.tool_call_id not in results:
            results[m.tool_call_id] = m
    out: list[Any] = []
    last_ai = max((i for i, m in enumerate(messages) if isinstance(m, AIMessage)), default=-1)
    used: set[str] = set()
    for i, m in enumerate(messages):
        if isinstance(m, ToolMessage):
            continue
        out.append(m)
        if not isinstance(m, AIMessage):
            continue
        ids = [c.get("id") or "" for c in m.tool_calls] + [c.get("id") or "" for c in m.invalid_tool_calls]
        for call_id, name in zip(ids, [c.get("name") for c in m.tool_calls] + [c.get("name") for c in m.invalid_tool_calls]):
            if call_id in used:
                continue
            found = results.get(call_id)
            if found is not None:
                out.append(found)
                used.add(call_id)
            elif i == last_ai and call_id in waiting:
                continue  # answered when the pending approval is decided
            else:
                later_turn = i != last_ai
                out.append(ToolMessage(content=NOT_RUN if later_turn else NOT_FINISHED, tool_call_id=call_id,
                                       name=str(name or ""), status="error"))
                used.add(call_id)
    return out
