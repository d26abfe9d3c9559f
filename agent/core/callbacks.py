"""A LangChain callback handler that turns model and tool callbacks into events and rows.

It sees every model request (the messages sent) and response (text, tool calls, usage), each
streamed token, and the stream tool's `fal_queue_status` custom events, which it maps back to
the tool call that dispatched them.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk

from agent.core.events import Token, ToolProgress
from agent.core.turnlog import TurnLog

__all__ = ["PROGRESS_EVENT", "message_record", "TurnCallbacks"]


PROGRESS_EVENT = "fal_queue_status"


def message_record(message: BaseMessage) -> dict[str, Any]:
    """A message as a small JSON-able dict for the transcript."""
    out: dict[str, Any] = {"role": message.type, "content": message.content}
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = [{"id": c.get("id"), "name": c["name"], "args": c["args"]} for c in tool_calls]
    call_id = getattr(message, "tool_call_id", None)
    if call_id:
        out["tool_call_id"] = call_id
    return out


def _key(message: BaseMessage) -> tuple[str, str]:
    """What tells two sent messages apart: their id (the agent's state gives every message one)."""
    return message.type, message.id or str(message.content)


class TurnCallbacks(AsyncCallbackHandler):
    """Callbacks for one runner: model logging, token streaming, tool progress."""

    def __init__(self, log: TurnLog, model_name: str) -> None:
        self.log = log
        self.model_name = model_name
        self._started: dict[UUID, float] = {}
        self._tool_calls: dict[UUID, tuple[str, str]] = {}
        self._partial: dict[tuple[UUID, Any], dict[str, Any]] = {}
        self._raw_by_id: dict[str, dict[str, Any]] = {}
        self._logged = 0
        self._sent_keys: list[tuple[str, str]] = []
        self.usage: dict[str, int] = {}

    def raw_args(self, call_id: str | None) -> str | None:
        """The argument text a streamed tool call arrived with, before LangChain's lenient parse."""
        entry = self._raw_by_id.get(call_id or "")
        return None if entry is None else entry["args"]

    def reset_usage(self) -> None:
        """Start counting tokens (and streamed arguments) afresh for a new turn."""
        self.usage = {}
        self._partial.clear()
        self._raw_by_id.clear()

    async def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]],
                                  *, run_id: UUID, **kwargs: Any) -> None:
        self._started[run_id] = time.perf_counter()
        sent = messages[0] if messages else []
        # Each request resends the whole conversation; the session's rows already hold its
        # prefix, so a row keeps only what is new (`offset` says where it starts). Reading the
        # session's model_request rows in order rebuilds every request exactly. A request that
        # does not start with the previous one (older turns trimmed off, agent/core/history.py)
        # is logged whole.
        keys = [_key(m) for m in sent]
        n = len(self._sent_keys)
        offset = n if 0 < n <= len(keys) and keys[:n] == self._sent_keys else 0
        self._sent_keys = keys
        self._logged = len(sent)
        self.log.record("model_request", {"model": self.model_name, "message_count": len(sent),
                                          "offset": offset,
                                          "messages": [message_record(m) for m in sent[offset:]]})

    async def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *,
                               chunk: GenerationChunk | ChatGenerationChunk | None = None, run_id: UUID,
                               parent_run_id: UUID | None = None, tags: list[str] | None = None,
                               **kwargs: Any) -> None:
        message = chunk.message if isinstance(chunk, ChatGenerationChunk) else None
        # Streamed arguments are parsed leniently (`{"a": x` becomes `{}`), so keep the raw
        # text: the malformed-call middleware checks it strictly.
        for piece in getattr(message, "tool_call_chunks", None) or []:
            entry = self._partial.setdefault((run_id, piece.get("index")), {"args": ""})
            entry["args"] += piece.get("args") or ""
            if piece.get("id"):
                self._raw_by_id[piece["id"]] = entry
        text = token if isinstance(token, str) else "".join(
            p if isinstance(p, str) else str(p.get("text") or "") for p in token)
        if text:
            self.log.emit(Token(text))

    async def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._started.pop(run_id, None)
        duration = time.perf_counter() - started if started is not None else None
        data: dict[str, Any] = {"model": self.model_name}
        generations = response.generations[0] if response.generations else []
        message = getattr(generations[0], "message", None) if generations else None
        if message is not None:
            data.update(message_record(message))
            usage = getattr(message, "usage_metadata", None)
            if usage:
                data["usage"] = dict(usage)
                for key in ("input_tokens", "output_tokens", "total_tokens"):
                    self.usage[key] = self.usage.get(key, 0) + int(usage.get(key, 0) or 0)
            invalid = getattr(message, "invalid_tool_calls", None)
            if invalid:
                data["invalid_tool_calls"] = [dict(c) for c in invalid]
        self.log.record("model_response", data, duration_s=duration)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._started.pop(run_id, None)
        duration = time.perf_counter() - started if started is not None else None
        from agent.redact import redact_text

        self.log.record("error", {"where": "model", "message": redact_text(str(error))}, duration_s=duration)

    async def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
                            tool_call_id: str | None = None, **kwargs: Any) -> None:
        self._tool_calls[run_id] = (tool_call_id or str(run_id), serialized.get("name", ""))

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_calls.pop(run_id, None)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_calls.pop(run_id, None)

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if name != PROGRESS_EVENT:
            return
        call_id, tool = self._tool_calls.get(run_id, (str(run_id), "stream_queue_status"))
        payload = data if isinstance(data, dict) else {"value": data}
        self.log.emit(ToolProgress(call_id=call_id, name=tool, data=payload))
        self.log.record("tool_progress", {"call_id": call_id, "name": tool, "data": payload})
