"""Transcript data as text: the stored JSON, search text, JSON lines, Markdown, summaries.

Pure functions over the plain dicts `TranscriptStore` returns, so the CLI, the TUI and tests
share one rendering.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: redaction loads pydantic, which reading a transcript does without
    from agent.redact import Redactor

# Keys whose value is the human text of an event, shown as prose rather than JSON.
_TEXT_KEYS = ("text", "content", "message", "answer")


def iso(ts: float | None) -> str | None:
    """Unix seconds -> `2025-01-31T12:00:00.123Z`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def search_text(kind: str, data: Any) -> str:
    """What full-text search sees: every string and number in data, then the kind."""
    parts: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, int | float) and not isinstance(item, bool):
            parts.append(str(item))
    # The kind goes last so that snippets open on the event's own text.
    parts.append(kind)
    return "\n".join(parts)


def to_jsonl(events: list[dict[str, Any]]) -> str:
    """One JSON object per line, newline-terminated."""
    return "".join(json.dumps(e, ensure_ascii=False, sort_keys=False) + "\n" for e in events)


def _title(event: dict[str, Any]) -> str:
    data = event.get("data") or {}
    name = data.get("name") or data.get("tool") if isinstance(data, dict) else None
    time = (event.get("ts") or "")[11:19]
    bits = [time, event["kind"]] + ([str(name)] if name else [])
    if event.get("duration_s") is not None:
        bits.append(f"{event['duration_s']:.3f}s")
    return " · ".join(b for b in bits if b)


def _fence(value: Any) -> str:
    # Indented JSON of a dict never starts a line with backticks, so no inner text can close
    # the fence early.
    body = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return f"```json\n{body}\n```"


def _event_md(event: dict[str, Any]) -> list[str]:
    lines = [f"### {_title(event)}", ""]
    meta = [f"by {event.get('user') or '?'} as {event.get('persona') or '?'}"]
    if event.get("ref"):
        meta.append(f"ref `{event['ref']}`")
    lines += ["_" + ", ".join(meta) + "_", ""]
    data = dict(event.get("data") or {})
    for key in _TEXT_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            data.pop(key)
            lines += ["> " + line if line else ">" for line in value.splitlines()] + [""]
            break
    if isinstance(data.get("name"), str):
        data.pop("name")  # already in the title
    if data:
        lines += [_fence(data), ""]
    return lines


def to_markdown(sessions: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """A readable transcript: one section per session, one subsection per event."""
    by_session: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_session.setdefault(event["session_id"], []).append(event)
    lines = ["# fal-persona transcript", ""]
    for session in sessions:
        group = by_session.get(session["id"], [])
        lines += [
            f"## Session {session['id']}",
            "",
            f"- started: {session['started_at']}",
            f"- user: {session.get('user') or '?'}",
            f"- persona: {session.get('persona') or '?'}",
            f"- source: {session.get('source')}",
            f"- events: {len(group)}",
            "",
        ]
        for event in group:
            lines += _event_md(event)
    return "\n".join(lines).rstrip("\n") + "\n"


def summary_line(event: dict[str, Any], width: int = 100) -> str:
    """`12:00:01  tool_call  {"name": ...}`: one event on one line, control characters escaped."""
    data = json.dumps(event.get("data"), ensure_ascii=False, default=str)
    if len(data) > width:
        data = data[: width - 1] + "…"
    return f"{(event.get('ts') or '')[11:23]}  {event['kind']:<14} {data}"


def encode(clean: dict[str, Any], redact: Redactor) -> tuple[str, bool]:
    """Compact JSON of already-redacted data (what `record` stores), and whether anything needed converting."""
    converted: list[bool] = []

    def default(obj: Any) -> Any:
        converted.append(True)
        return _jsonable(obj, redact)

    try:
        body = json.dumps(clean, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=default)
    except (TypeError, ValueError):  # NaN/inf, non-string keys, cycles: store a faithful stand-in
        body = json.dumps(_sanitize(clean, redact, 0), ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False)
        return body, True
    return body, bool(converted)


def _sanitize(value: Any, redact: Redactor, depth: int) -> Any:
    """A strictly JSON-safe copy: string keys, finite numbers, bounded depth."""
    if depth > 64:
        return "<too deep>"
    if isinstance(value, dict):
        return {redact.text(str(k)): _sanitize(v, redact, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v, redact, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _sanitize(_jsonable(value, redact), redact, depth + 1)


def _jsonable(obj: Any, redact: Redactor) -> Any:
    """JSON stand-ins for objects json cannot encode, redacted like everything else."""
    if hasattr(obj, "model_dump"):
        return redact(obj.model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return redact(dataclasses.asdict(obj))
    if isinstance(obj, bytes | bytearray):
        return f"<{len(obj)} bytes>"
    if isinstance(obj, set | frozenset):
        return redact(sorted(obj, key=repr))
    return redact.text(str(obj))
