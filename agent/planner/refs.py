"""Reading the conversation for the planner: which steps are done, what they returned, and
which request "it" refers to."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agent.planner.grammar import UUID_RE
from tools.outcome import find_field, message_outcome

_REQUEST_ID_LINE = re.compile(r"request_id[\"']?\s*[:=]\s*[\"']?([\w-]{6,})")
_ENDPOINT_LINE = re.compile(r"endpoint_id[\"']?\s*[:=]\s*[\"']?([\w.-]+/[\w./-]+)")


def current_turn(messages: list[BaseMessage]) -> tuple[str, list[BaseMessage]]:
    """The last human message's text and everything after it."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return _text(messages[i]), messages[i + 1:]
    return "", list(messages)


def _text(message: BaseMessage) -> str:
    """A message's plain text, whatever the content shape."""
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


def done_calls(after: list[BaseMessage]) -> list[tuple[dict[str, Any], ToolMessage | None]]:
    """Tool calls made since the human spoke, each with its result (None while pending)."""
    results = {m.tool_call_id: m for m in after if isinstance(m, ToolMessage)}
    calls: list[tuple[dict[str, Any], ToolMessage | None]] = []
    for m in after:
        if isinstance(m, AIMessage):
            for call in m.tool_calls:
                calls.append((dict(call), results.get(call.get("id") or "")))
    return calls


def planner_steps_taken(after: list[BaseMessage]) -> int:
    """How many of our own plan steps were emitted this turn (one AI tool-call message each)."""
    return sum(1 for m in after if isinstance(m, AIMessage) and m.tool_calls)


def is_error(result: ToolMessage | None) -> bool:
    """A tool result that did not do what was asked (or has not arrived)."""
    return result is None or not message_outcome(result).ok


def is_rejected(result: ToolMessage | None) -> bool:
    """A tool call the user declined at the approval prompt (so it never ran)."""
    return result is not None and message_outcome(result).kind == "rejected"


def request_ref(messages: list[BaseMessage]) -> dict[str, str]:
    """The latest (endpoint_id, request_id) seen in the whole conversation, newest first."""
    calls: dict[str, dict[str, Any]] = {}
    for m in messages:
        if isinstance(m, AIMessage):
            for made in m.tool_calls:
                calls[made.get("id") or ""] = dict(made)
    for m in reversed(messages):
        if not isinstance(m, ToolMessage) or is_error(m):
            continue
        args = calls.get(m.tool_call_id, {}).get("args") or {}
        text = _text(m)
        request_id = args.get("request_id") or find_field(m.artifact, "request_id")
        if not request_id:
            hit = _REQUEST_ID_LINE.search(text) or UUID_RE.search(text)
            request_id = hit.group(1) if hit and hit.groups() else (hit.group(0) if hit else None)
        endpoint = args.get("endpoint_id") or find_field(m.artifact, "endpoint_id")
        if not endpoint:
            hit = _ENDPOINT_LINE.search(text)
            endpoint = hit.group(1) if hit else None
        if request_id and endpoint:
            return {"endpoint_id": str(endpoint), "request_id": str(request_id)}
    return {}


_URL_RE = re.compile(r"https?://[^\s\"'<>)\]]+")
_PLACEHOLDER_RE = re.compile(r"\$(last|url)\b")


def fill_results(args: dict[str, Any], messages: list[BaseMessage]) -> dict[str, Any]:
    """`$last` / `$url` in string arguments: the latest successful result's text / first URL
    (a placeholder with nothing to fill it stays as written)."""
    if not any(isinstance(v, str) and _PLACEHOLDER_RE.search(v) for v in args.values()):
        return args
    latest = next((m for m in reversed(messages) if isinstance(m, ToolMessage) and not is_error(m)), None)
    if latest is None:
        return args
    text = _text(latest).strip()
    hit = _URL_RE.search(text) or _URL_RE.search(json.dumps(latest.artifact, default=str))
    found = {"last": text, "url": hit.group(0) if hit else None}

    def fill(m: re.Match[str]) -> str:
        value = found[m.group(1)]
        return value if value is not None else m.group(0)

    return {k: _PLACEHOLDER_RE.sub(fill, v) if isinstance(v, str) else v for k, v in args.items()}


def short(result: ToolMessage | None, limit: int = 400) -> str:
    """A result's text, trimmed for a summary line."""
    if result is None:
        return "(no result)"
    text = _text(result).strip()
    if isinstance(result.content, str) is False:
        text = json.dumps(result.content)[:limit]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
