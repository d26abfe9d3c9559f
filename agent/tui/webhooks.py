"""Webhook notices in the TUI: the listener's events update the jobs panel and the chat.

The listener publishes `TriggerNotice`s from its own thread; the app re-posts them as a message
(`post_message` is thread-safe and never blocks the listener), and `show_webhook` runs on the UI
loop. A `received` notice carries no body, so the payload (result images, error text) is read
back from the listener's inbox, where it was committed before the notice went out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from agent.tui.chat import NoticeMessage
from agent.tui.progress import JobUpdate

log = logging.getLogger(__name__)

EVENT_KINDS = {"received", "duplicate"}
SETTLED_QUIETLY = {"no rule matched"}


def listener_of(runtime: Any) -> Any:
    """The runtime's running listener, or None."""
    return getattr(runtime, "listener", None) if runtime is not None else None


def header_label(runtime: Any) -> str:
    """`on <url>` / `on <url> (not attached)` / `` when no listener runs."""
    listener = listener_of(runtime)
    if listener is None:
        return ""
    url = _url(listener)
    attached = getattr(runtime, "webhooks_attached", True)
    return f"on {url}" + ("" if attached else " (not attached)")


def start_notices(runtime: Any) -> list[str]:
    """The chat notices about the listener at start-up (running where; or why it is missing)."""
    notes = [str(n) for n in getattr(runtime, "notices", None) or []]
    listener = listener_of(runtime)
    if listener is not None and getattr(runtime, "webhooks_attached", True):
        where = ("the sandbox signs its webhooks and they are verified here"
                 if getattr(runtime, "mode", "") == "sandbox" else "fal.ai must be able to reach it")
        notes.insert(0, f"Webhook listener on: jobs you submit get {_url(listener)} attached "
                        f"({where}); their events show up here and in the jobs panel.")
    return notes


def _url(listener: Any) -> str:
    try:
        return str(listener.webhook_url())
    except Exception:  # a fake or a stopped listener: show what we know
        return str(getattr(listener, "url", "?"))


def body_from_inbox(listener: Any, request_id: str) -> dict[str, Any] | None:
    """The stored webhook body for `request_id` (blocking: call it in a thread)."""
    inbox = getattr(listener, "inbox", None)
    if inbox is None or not request_id:
        return None
    row = inbox.get(request_id)
    if row is None:
        return None
    try:
        body = json.loads(row.body)
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


async def webhook_body(app: Any, notice: Any) -> dict[str, Any]:
    """The event's body: from the notice when it carries one, else from the inbox."""
    data = getattr(notice, "data", None)
    if isinstance(data, dict) and ("payload" in data or "error" in data):
        return data
    listener = listener_of(getattr(app, "runtime", None))
    if listener is None:
        return {}
    try:
        return await asyncio.to_thread(body_from_inbox, listener, notice.request_id) or {}
    except Exception:  # the notice is still shown, just without media
        log.warning("could not read the webhook body of %s from the inbox", notice.request_id, exc_info=True)
        return {}


def error_text(body: dict[str, Any]) -> str:
    """A short reason from an ERROR webhook body."""
    for key in ("error", "payload_error"):
        value = body.get(key)
        if value:
            return str(value)[:120]
    payload = body.get("payload")
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg") or detail[0])[:120]
    return str(detail)[:120] if detail else "the request failed"


async def show_webhook(app: Any, notice: Any) -> None:
    """One listener notice: into the jobs panel (events) and the chat (events, rule outcomes)."""
    rid = str(getattr(notice, "request_id", "") or "")
    status = str(getattr(notice, "status", "") or "").upper()
    kind = str(getattr(notice, "kind", "") or "event")
    endpoint = str(getattr(notice, "endpoint_id", "") or "")
    detail = str(getattr(notice, "detail", "") or "")
    if kind not in EVENT_KINDS:
        # Rule and schedule outcomes: the job row already shows the event itself.
        if kind == "done" and (not detail or detail in SETTLED_QUIETLY):
            return
        await app.chat.add(NoticeMessage(
            f"webhook {kind}: {endpoint or rid}" + (f" · {detail}" if detail else ""), kind="webhook"))
        return
    body = await webhook_body(app, notice)
    # Media the user has not fetched yet is previewed in the chat, as fetching it would have.
    preview = status == "OK" and kind == "received"
    summary = await _update_job(app, rid, endpoint, status, body)
    text = f"webhook {kind}: {status or '?'} {endpoint or '?'} {rid}".rstrip()
    if kind == "duplicate":
        summary = "already stored, not run again"
    await app.chat.add(NoticeMessage(text + (f" · {summary}" if summary else "")
                                     + (f" · {detail}" if detail else ""), kind="webhook"))
    if preview and body.get("payload") is not None:
        from agent.tui.turn import preview_once

        await preview_once(app.chat, app.jobs, body["payload"], endpoint, rid)


async def _update_job(app: Any, rid: str, endpoint: str, status: str, body: dict[str, Any]) -> str:
    """Apply an event to its job row (created if this session never saw the job); returns a summary."""
    from agent.tui.turn import result_summary

    if not rid:
        return ""
    payload = body.get("payload")
    row = app.jobs.rows.get(rid)
    if row is not None and row.outcome:
        # The status stream got there first; the webhook confirms what the row shows.
        return row.result_line.lstrip("✓✗⊘ ") if status in ("OK", "ERROR") else ""
    if status == "OK":
        summary = result_summary(payload, "result (webhook)") if payload is not None else "result (webhook)"
        await app.jobs.set_result(rid, endpoint, payload, summary)
        return summary
    if status == "ERROR":
        summary = error_text(body)
        cancelled = "cancelled" in summary.lower() or "request_cancelled" in str(body)[:2000]
        await app.jobs.set_result(rid, endpoint, None, f"{summary} (webhook)", error=not cancelled,
                                  cancelled=cancelled)
        return summary
    await app.jobs.update_job(JobUpdate(rid, endpoint, status or "EVENT"))
    return ""
