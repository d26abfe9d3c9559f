"""Compact, readable tool content (for the LLM and the screen); the full JSON is the artifact."""

from __future__ import annotations

import json
from typing import Any

from tools.fal.errors import FalError, RequestFailedError
from tools.fal.files import human_size
from tools.fal.mapping import summarize_detail
from tools.fal.models import (
    CancelResult,
    EstimateResponse,
    Jwks,
    ModelsPage,
    PricingResponse,
    QueueStatus,
    SubmitResponse,
)
from tools.fal.upload import UploadedFile

__all__ = [
    "MAX_CONTENT", "error", "submitted", "status_line", "status", "result", "failed_result", "cancelled",
    "models_table", "prices", "estimate", "jwks", "input_fields", "uploaded"
]


MAX_CONTENT = 2000
_MEDIA_KEYS = ("url",)


def _clip(text: str, limit: int = MAX_CONTENT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + " ... (truncated)"


def error(err: FalError, *, context: str = "") -> tuple[str, dict[str, Any]]:
    """``Error: what went wrong. Next: what to do`` plus ``{"error": {...}}``."""
    facts = [f"HTTP {err.status}" if err.status else None,
             f"fal error type {err.fal_error_type}" if err.fal_error_type else None,
             f"request id {err.request_id}" if err.request_id else None]
    where = ", ".join(f for f in facts if f)
    head = f"Error: {context + ': ' if context else ''}{type(err).__name__}"
    text = f"{head}{f' ({where})' if where else ''}: {err.message}\nNext: {err.hint}"
    return text, {"error": err.to_dict()}


def submitted(endpoint_id: str, sub: SubmitResponse) -> str:
    """Content for a successful submit."""
    pos = f", queue position {sub.queue_position}" if sub.queue_position is not None else ""
    return (f"Submitted to {endpoint_id}. request_id: {sub.request_id} "
            f"(status {sub.status or 'IN_QUEUE'}{pos}).\n"
            "Next: stream_queue_status or get_queue_status to follow it, then get_queue_result "
            "for the output.")


def status_line(endpoint_id: str, st: QueueStatus) -> str:
    """One line describing a status."""
    rid = st.request_id or "?"
    if st.status == "IN_QUEUE":
        pos = st.queue_position
        where = "at the front" if pos == 0 else (f"position {pos}" if pos is not None else "")
        return f"{endpoint_id} {rid}: IN_QUEUE{' ' + where if where else ''}."
    if st.status == "IN_PROGRESS":
        return f"{endpoint_id} {rid}: IN_PROGRESS."
    if st.failed:
        return (f"{endpoint_id} {rid}: COMPLETED WITH AN ERROR ({st.error_type or 'error'}): "
                f"{st.error or 'see get_queue_result'}.")
    took = st.metrics.get("inference_time") if st.metrics else None
    return f"{endpoint_id} {rid}: COMPLETED{f' in {took:.2f}s' if isinstance(took, (int, float)) else ''}."


def status(endpoint_id: str, st: QueueStatus, *, max_logs: int = 5) -> str:
    """Content for a status poll, with the last few log lines."""
    lines = [status_line(endpoint_id, st)]
    if st.logs:
        shown = st.logs[-max_logs:]
        lines.append(f"Last {len(shown)} of {len(st.logs)} log lines:")
        lines += [f"  [{e.level or 'INFO'}] {e.message}" for e in shown]
    if st.status == "COMPLETED":
        lines.append("Next: get_queue_result to fetch the output" + (
            " and the full error body." if st.failed else "."))
    return _clip("\n".join(lines))


def result(endpoint_id: str, request_id: str, output: Any) -> str:
    """Content for a successful result: media URLs first, then the (clipped) JSON."""
    urls = _media_urls(output)
    head = f"Result of {endpoint_id} {request_id}:"
    media = "".join(f"\n  - {u}" for u in urls[:10])
    body = json.dumps(output, ensure_ascii=False, default=str)
    return _clip(head + (f"\nMedia:{media}" if media else "") + f"\nJSON: {body}")


def failed_result(endpoint_id: str, err: RequestFailedError) -> str:
    """Content that makes a failed request impossible to miss."""
    body = err.detail
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        shown = "\n".join(f"  - {summarize_detail([d])}" for d in detail[:20])
    else:
        shown = "  " + json.dumps(body, ensure_ascii=False, default=str)
    kind = f", fal error type {err.fal_error_type}" if err.fal_error_type else ""
    return _clip(
        f"Error: request {err.request_id} on {endpoint_id} FAILED (HTTP {err.status}{kind}). "
        "fal.ai reports failed requests as COMPLETED; this is the error it returned:\n"
        f"{shown}\nNext: fix the input named above and submit a new request "
        "(the failed one cannot be resumed).")


_CANCEL_TEXT = {
    "requested": ("Cancellation requested for {rid} on {ep}. A queued request is removed; one "
                  "already being dispatched or near the front of the queue may still run. "
                  "Next: get_queue_status to confirm; it ends as COMPLETED either way."),
    "already_completed": ("{rid} on {ep} had ALREADY COMPLETED, so nothing was cancelled "
                          "(and it may have been billed). Next: get_queue_result for its output."),
    "not_found": ("fal.ai does not know request {rid} on {ep} (NOT FOUND): check the endpoint "
                  "id (owner/app) and the request id from the submit; nothing was cancelled."),
}


def cancelled(res: CancelResult) -> str:
    """Content for each of the three cancel outcomes."""
    return _CANCEL_TEXT[res.outcome].format(rid=res.request_id, ep=res.endpoint_id)


def models_table(page: ModelsPage) -> str:
    """A compact table: endpoint id | name | category | status, then the next cursor."""
    if not page.models:
        return "No models matched. Try a broader query or no category."
    rows = ["endpoint_id | name | category | status"]
    for m in page.models:
        md = m.metadata
        rows.append(" | ".join([m.endpoint_id, md.display_name if md else "-",
                                md.category if md else "-", md.status if md else "-"]))
    tail = (f"More: call search_models again with cursor={page.next_cursor!r}."
            if page.has_more and page.next_cursor else "No more pages.")
    # Every row of the page (at most 100, the API's own bound): a clipped table reads as fewer models.
    return _clip("\n".join(rows) + f"\n({len(page.models)} models) {tail}", 16000)


def prices(resp: PricingResponse) -> str:
    """One line per endpoint: price per unit."""
    if not resp.prices:
        return "No prices returned for those endpoint ids."
    return "\n".join(f"{p.endpoint_id}: {p.unit_price:g} {p.currency} per {p.unit}"
                     for p in resp.prices)


def estimate(resp: EstimateResponse, body: dict[str, Any]) -> str:
    """The estimated total and what it covers."""
    what = ", ".join(f"{ep} x {next(iter(q.values())):g}" for ep, q in body["endpoints"].items())
    unit = "calls" if resp.estimate_type == "historical_api_price" else "units"
    return (f"Estimated total: {resp.total_cost:g} {resp.currency} ({resp.estimate_type}; "
            f"{unit}: {what}). Account discounts may change the real charge.")


def jwks(doc: Jwks) -> str:
    """How many keys, and a short fingerprint of each."""
    lines = [f"{len(doc.keys)} webhook signing key(s):"]
    lines += [f"  - {k.kty or '?'} {k.crv or '?'} {('kid ' + k.kid + ' ') if k.kid else ''}"
              f"x={k.x[:12]}..." for k in doc.keys]
    return "\n".join(lines)


def _media_urls(value: Any, depth: int = 0) -> list[str]:
    if depth > 6:
        return []
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in _MEDIA_KEYS and isinstance(v, str) and v.startswith(("http", "data:")):
                found.append(v if len(v) < 200 else v[:60] + "...")
            else:
                found += _media_urls(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            found += _media_urls(v, depth + 1)
    return found


def _field_text(f: dict[str, Any]) -> str:
    bits = [str(f.get("type", "any"))]
    if f.get("required"):
        bits.append("required")
    if f.get("enum"):
        bits.append("one of " + "|".join(str(v) for v in f["enum"][:12])
                    + ("|..." if len(f["enum"]) > 12 else ""))
    if "default" in f:
        bits.append(f"default {json.dumps(f['default'], default=str)[:40]}")
    if f.get("media"):
        bits.append("media URL")
    return f"{f['name']} ({', '.join(bits)})"


def input_fields(fields: dict[str, list[dict[str, Any]] | None]) -> str:
    """One line per endpoint: its input fields in short form (or why there are none)."""
    lines = []
    for endpoint_id, items in fields.items():
        if items is None:
            lines.append(f"{endpoint_id} input: no schema available")
        else:
            lines.append(f"{endpoint_id} input: " + "; ".join(_field_text(f) for f in items))
    return "\n".join(lines)


def uploaded(up: UploadedFile) -> str:
    """Content for a finished upload: the URL to pass on, never the bytes."""
    how = f"in {up.parts} parts" if up.multipart else "in one request"
    life = (f", expires in {up.expires_in_s} s" if up.expires_in_s is not None else "")
    return (f"Uploaded {up.file_name} ({human_size(up.size)}, {up.content_type}) {how}{life}.\n"
            f"URL: {up.url}\nNext: pass this URL in the model's media field (e.g. image_url).")
