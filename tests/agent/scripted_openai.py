"""A scripted OpenAI-compatible chat server on 127.0.0.1, for agent tests and the benchmark.

`ScriptedOpenAI(script)` serves `/v1/chat/completions`, answering request *n* with turn *n* of
the script (the last turn repeats when `repeat_last=True`, for endless-loop tests). A turn is
`text("...")` or `calls(call(name, args), ...)`, where args is a dict (sent as JSON) or a raw
string (sent as is, to test malformed arguments), or a function of the request body returning
one of those. Streaming requests get SSE chunks with
tool-call deltas carrying `index` and a final `data: [DONE]`; others get one JSON body.
Every request body is kept in `.requests`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def text(content: str) -> dict[str, Any]:
    """A turn that answers with text."""
    return {"content": content}


def call(name: str, args: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """One tool call inside a `calls(...)` turn."""
    return {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args), "id": call_id}


def calls(*items: dict[str, Any]) -> dict[str, Any]:
    """A turn that asks for tool calls."""
    return {"tool_calls": list(items)}


USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class ScriptedOpenAI:
    """The server; use as a context manager, `.url` is the `OPENAI_BASE_URL` (ends in /v1)."""

    def __init__(self, script: list[dict[str, Any]], *, repeat_last: bool = False) -> None:
        self.script = list(script)
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._served = 0
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                                     lifespan="off"))
        self._thread: threading.Thread | None = None
        self.url = ""

    def reset(self, script: list[dict[str, Any]]) -> None:
        """Serve a new script from its first turn (the benchmark reuses one server)."""
        with self._lock:
            self.script, self._served = list(script), 0
            self.requests.clear()

    def _next_turn(self) -> dict[str, Any]:
        with self._lock:
            n = self._served
            self._served += 1
        if n < len(self.script):
            return self.script[n]
        if self.repeat_last and self.script:
            return self.script[-1]
        return text("(script exhausted)")

    async def _completions(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append(body)
        turn = self._next_turn()
        if callable(turn):  # a turn computed from what the model was sent (e.g. a request id)
            turn = turn(body)
        if turn.get("delay_s"):  # a server that sits on its response headers (until stopped)
            until = time.monotonic() + turn["delay_s"]
            while time.monotonic() < until and not self._server.should_exit:
                await asyncio.sleep(0.02)
        model = body.get("model", "scripted")
        n = len(self.requests)
        tool_calls = [{"id": c.get("id") or f"call_{n}_{i}", "type": "function",
                       "function": {"name": c["name"], "arguments": c["arguments"]}}
                      for i, c in enumerate(turn.get("tool_calls", []))]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": turn.get("content")}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return JSONResponse({"id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                                 "model": model, "usage": USAGE,
                                 "choices": [{"index": 0, "message": message,
                                              "finish_reason": "tool_calls" if tool_calls else "stop"}]})
        return StreamingResponse(self._sse(n, model, turn, tool_calls, body), media_type="text/event-stream")

    async def _sse(self, n: int, model: str, turn: dict[str, Any], tool_calls: list[dict[str, Any]],
                   body: dict[str, Any]) -> Any:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data = {"id": f"chatcmpl-{n}", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        content = turn.get("content") or ""
        for i in range(0, len(content), 8):
            yield chunk({"content": content[i:i + 8]})
        if turn.get("cut"):  # the stream stops mid-reply: no finish reason, no [DONE]
            return
        for i, tc in enumerate(tool_calls):
            yield chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                         "function": {"name": tc["function"]["name"], "arguments": ""}}]})
            args = tc["function"]["arguments"]
            for j in range(0, len(args), 16):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 16]}}]})
        yield chunk({}, "tool_calls" if tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            yield f"data: {json.dumps({'id': f'chatcmpl-{n}', 'object': 'chat.completion.chunk', 'created': 0, 'model': model, 'choices': [], 'usage': USAGE})}\n\n"
        yield "data: [DONE]\n\n"

    def start(self) -> ScriptedOpenAI:
        """Start serving in a thread; returns when the port is bound."""
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("scripted OpenAI server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def last_tool_text(body: dict[str, Any]) -> str:
        """The newest tool result in a request body (for turns computed from it)."""
        tools = [m for m in body["messages"] if m.get("role") == "tool"]
        return str(tools[-1]["content"]) if tools else ""

    def tool_messages(self, index: int) -> list[dict[str, Any]]:
        """The `tool` role messages the model received in request `index`."""
        return [m for m in self.requests[index]["messages"] if m.get("role") == "tool"]
