"""Turns runner events into chat widgets and job updates, for one turn or slash command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.core.events import ApprovalRequest, ErrorEvent, Token, ToolEnd, ToolProgress, ToolStart, TurnEnd
from agent.tui.chat import AnswerMessage, ChatView, ErrorMessage, NoticeMessage
from agent.tui.jobs import JobsPanel
from agent.tui.progress import JobUpdate, job_update, log_messages
from agent.tui.toolcard import ToolCard, result_summary, summarize
from tools.outcome import jsonable
from tools.registry import JOB_TOOLS, MEDIA_TOOLS


def readable_error(exc: BaseException) -> str:
    """A one-line, secret-free description of an unexpected exception."""
    from pydantic import ValidationError

    from agent.redact import redact_text
    from tools.fal.config import settings_error_text

    if isinstance(exc, ValidationError) and exc.title in ("Settings", "FalConfig"):
        return settings_error_text(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def progress_text(data: dict[str, Any]) -> str:
    """What a status update says, in one short line."""
    status = str(data.get("status") or "update")
    if isinstance(data.get("queue_position"), int):
        return f"{status} · queue position {data['queue_position']}"
    logs = log_messages(data)
    return f"{status} · {logs[-1][:80]}" if logs else status


async def preview_once(chat: ChatView, jobs: JobsPanel, result: Any, endpoint: str, rid: str) -> None:
    """Show a result's media (or its text) in the chat, unless this request's is on screen already."""
    from agent.tui.media_view import result_widgets

    row = jobs.rows.get(rid)
    widgets = result_widgets(result, endpoint, rid)
    if not widgets or (row is not None and row.previewed):
        return
    if row is not None:
        row.previewed = True
    for widget in widgets:
        await chat.add(widget)


def cancel_note(data: dict[str, Any]) -> tuple[str, str]:
    """(new row status or "", a note) for a cancel's outcome, in fal's terms."""
    outcome = data.get("outcome")
    if outcome == "requested":
        return "CANCELLATION_REQUESTED", "cancel requested; fal has not confirmed it yet"
    if outcome == "already_completed":
        return "", "cancel came too late: fal says it had already completed"
    if outcome == "not_found":
        return "", "cancel: fal does not know this request"
    return "", f"cancel: {data.get('fal_status') or outcome or 'no answer'}"


Follow = Callable[[str, str], None]


class TurnRenderer:
    """Keeps the per-turn state: the answer being streamed, the tool cards by call id, and the
    requests this turn submitted (so Esc can say which are still running)."""

    def __init__(self, chat: ChatView, jobs: JobsPanel, follow: Follow | None = None) -> None:
        self.chat, self.jobs = chat, jobs
        self.follow = follow
        self.answer: AnswerMessage | None = None
        self.streamed = ""
        self.cards: dict[str, ToolCard] = {}
        self.submitted: list[str] = []

    async def handle(self, event: Any) -> None:
        """Render one event."""
        if isinstance(event, Token):
            if self.answer is None:
                answer = AnswerMessage()
                await self.chat.add(answer)
                self.answer = answer
            self.streamed += event.text
            await self.answer.stream(event.text)
        elif isinstance(event, ToolStart):
            await self._close_answer()
            card = ToolCard(event.call_id, event.name, event.args, event.kind)
            self.cards[event.call_id] = card
            await self.chat.add(card)
            # No job row yet: a request id fal does not know must not become a job on screen.
        elif isinstance(event, ToolProgress):
            await self._progress(event)
        elif isinstance(event, ToolEnd):
            await self._tool_end(event)
        elif isinstance(event, ApprovalRequest):
            pass  # the approver callback opens the modal; the stream copy is informational
        elif isinstance(event, ErrorEvent):
            await self._close_answer()
            await self.chat.add(ErrorMessage(event.message))
        elif isinstance(event, TurnEnd):
            await self._close_answer()
            if event.cancelled:
                await self.chat.add(NoticeMessage("cancelled", kind="cancelled"))
            elif event.answer.strip() and not self.streamed.strip():
                await self.chat.add(AnswerMessage(event.answer))

    async def _close_answer(self) -> None:
        if self.answer is not None:
            await self.answer.finish()
            self.answer = None

    async def _progress(self, event: ToolProgress) -> None:
        data = jsonable(event.data)
        data = data if isinstance(data, dict) else {}
        card = self.cards.get(event.call_id)
        if card is not None:
            card.progress(progress_text(data))
        update = job_update(data, card.args if card else None)
        if update is not None:
            await self.jobs.update_job(update)

    async def _tool_end(self, event: ToolEnd) -> None:
        card = self.cards.get(event.call_id)
        artifact = jsonable(event.artifact)
        if card is not None:
            card.finish(event.content, artifact, event.error, event.duration_s)
        args = card.args if card is not None else {}
        if event.name not in JOB_TOOLS:
            return
        data = artifact if isinstance(artifact, dict) else {}
        rid = data.get("request_id") or args.get("request_id")
        endpoint = str(args.get("endpoint_id") or data.get("endpoint_id") or "")
        if not isinstance(rid, str) or not rid:
            return
        submitted = event.name == "submit_queue_request" and not event.error
        if submitted:
            self.submitted.append(rid)
            await self.jobs.row_for(rid, endpoint, submitted=True)
        if event.error:
            if event.name == "submit_queue_request" or rid not in self.jobs.rows:
                return  # nothing was queued, or a job this session never saw: the card says it
            if event.name == "cancel_queue_request":
                (await self.jobs.row_for(rid, endpoint)).note("✗ " + summarize(event.content, 60))
                return
            # A failed read says nothing about the job itself, unless fetching its result failed
            # because the request failed.
            if event.name == "get_queue_result":
                await self.jobs.set_result(rid, endpoint, None, summarize(event.content, 60), error=True)
            else:
                (await self.jobs.row_for(rid, endpoint)).note("✗ " + summarize(event.content, 60))
        elif event.name == "get_queue_result":
            await self.jobs.set_result(rid, endpoint, artifact, result_summary(artifact, event.content))
        elif event.name == "cancel_queue_request":
            status, note = cancel_note(data)
            row = await self.jobs.row_for(rid, endpoint)
            # A requested cancel may already be confirmed (followed, or by webhook): keep that.
            if not (status and row.outcome):
                if status:
                    await self.jobs.update_job(JobUpdate(rid, endpoint, status))
                row.note(note)
        else:
            update = job_update({**data, "request_id": rid}, args)
            if event.name == "submit_queue_request" and update and not update.status:
                update = JobUpdate(rid, endpoint, "IN_QUEUE", update.queue_position)
            if update is not None:
                await self.jobs.update_job(update)
        if event.name in MEDIA_TOOLS and not event.error:
            await preview_once(self.chat, self.jobs, artifact, endpoint, rid)
        known = self.jobs.rows.get(rid)
        if self.follow is not None and known is not None and not known.is_done:
            self.follow(endpoint, rid)

    def still_running(self) -> list[Any]:
        """Rows of the requests this turn submitted that have not ended."""
        return [self.jobs.rows[r] for r in self.submitted if r in self.jobs.rows and not self.jobs.rows[r].is_done]

    async def cancelled(self) -> None:
        """The turn's worker was cancelled (Esc): close what is open and say what is still running."""
        await self._close_answer()
        for card in self.cards.values():
            if not card.done:
                card.stop("stopped by Esc" + (" (the submit may have reached fal)"
                                              if card.tool_name == "submit_queue_request" else ""))
        running = self.still_running()
        parts = []
        if running:
            jobs = ", ".join(f"{r.endpoint_id or '?'} {r.request_id[:8]}" for r in running)
            parts.append(f"the turn stopped, but fal is still working on {len(running)} job(s) it "
                         f"submitted ({jobs}) and will bill them: press Cancel on the job's row, or "
                         "type /cancel for the latest one")
        if any(c.tool_name == "submit_queue_request" and c.content.startswith("stopped")
               for c in self.cards.values()):
            parts.append("a submit was on its way and may have reached fal; if it did, its job "
                         "appears in the jobs panel when its webhook arrives")
        text = "cancelled" + (": " + "; ".join(parts) if parts else "")
        await self.chat.add(NoticeMessage(text, kind="cancelled"))
