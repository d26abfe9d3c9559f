"""Helpers for the end-to-end tests: the nine tools driven against a real sandbox.

`Harness` hides whether the sandbox runs on a loopback uvicorn thread or in-process through
`httpx.ASGITransport`; the tests only see tools, the sandbox state and a clock to move.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import ToolMessage

from tools.catalog import build_fal_tools
from tools.fal.client import FalClient
from tools.fal.config import FalConfig

KEY = "test-id:test-secret"
LOCKED_KEY = "locked-id:locked-secret"
LOCKED_KEY_ID = "locked-id"
EP = "fal-ai/flux/dev"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Recorder(httpx.AsyncBaseTransport):
    """Wraps the real transport and records every request the client actually sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str]] = []
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        self.sent.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, method: str, path_suffix: str = "") -> int:
        """Requests with this method whose path ends with `path_suffix`."""
        return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))


def assert_no_secret(msg: ToolMessage, secrets: tuple[str, ...]) -> None:
    """Neither the content nor the artifact of a tool answer may carry any part of the key."""
    text = str(msg.content) + json.dumps(msg.artifact, default=str)
    for secret in secrets:
        assert secret not in text, f"secret leaked in {msg.name}"


class StatusEvents(AsyncCallbackHandler):
    """Collects the `fal_queue_status` custom events a tool dispatches."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == "fal_queue_status":
            self.events.append(data)

    def statuses(self) -> list[str]:
        """The status of each event, in order."""
        return [e["status"] for e in self.events]

    async def wait_for(self, condition: Callable[[list[dict[str, Any]]], bool],
                       timeout: float = 10.0) -> None:
        """Poll (bounded) until `condition(events)` holds."""
        end = time.monotonic() + timeout
        while not condition(self.events):
            if time.monotonic() > end:
                raise AssertionError(f"condition not met; events: {self.statuses()}")
            await asyncio.sleep(0.01)


@dataclass
class ToolBox:
    """The nine tools over one FalClient, plus the transport that recorded its requests."""

    tools: dict[str, Any]
    client: FalClient
    recorder: Recorder
    secrets: tuple[str, ...]

    async def call(self, name: str, callbacks: list[Any] | None = None,
                   **args: Any) -> ToolMessage:
        """Invoke a tool with a ToolCall (so the answer is a ToolMessage with an artifact)."""
        call = {"name": name, "args": args, "id": f"call-{name}", "type": "tool_call"}
        config = {"callbacks": callbacks} if callbacks else None
        msg = await self.tools[name].ainvoke(call, config=config)
        assert isinstance(msg, ToolMessage), type(msg)
        assert_no_secret(msg, self.secrets)
        return msg


@dataclass
class Harness:
    """One running sandbox and the means to build tools on it and move its clock."""

    mode: str
    url: str
    state: Any
    advance_fn: Callable[[float], Awaitable[Any]]
    transport_fn: Callable[[], httpx.AsyncBaseTransport]
    boxes: list[ToolBox] = field(default_factory=list)

    async def advance(self, seconds: float) -> None:
        """Move the sandbox clock (and wait for the webhook attempts that become due)."""
        await self.advance_fn(seconds)

    def config(self, key: str | None = KEY, **overrides: Any) -> FalConfig:
        """A FalConfig pointing every base URL at this sandbox."""
        values: dict[str, Any] = {
            "FAL_QUEUE_BASE_URL": self.url, "FAL_API_BASE_URL": self.url + "/v1",
            "FAL_JWKS_URL": self.url + "/.well-known/jwks.json"}
        if key is not None:
            values["FAL_KEY"] = key
        values.update(overrides)
        return FalConfig(**values)

    def toolbox(self, key: str | None = KEY, **overrides: Any) -> ToolBox:
        """The nine tools built as the product builds them, on a recording transport."""
        recorder = Recorder(self.transport_fn())
        client = FalClient(self.config(key, **overrides), transport=recorder)
        tools = {t.name: t for t in build_fal_tools(config=client.config, client=client)}
        secrets = tuple(s for s in ((key or ""), (key or "").partition(":")[2]) if s)
        box = ToolBox(tools, client, recorder, secrets)
        self.boxes.append(box)
        return box

    async def download(self, url: str) -> httpx.Response:
        """GET a URL the sandbox handed out (media), over the same kind of connection."""
        async with httpx.AsyncClient(transport=self.transport_fn()) as http:
            return await http.get(url)

    async def aclose(self) -> None:
        """Close every client built here."""
        for box in self.boxes:
            await box.client.aclose()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, checking the signature first."""
    assert data[:8] == PNG_MAGIC, data[:8]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


class WebhookReceiver:
    """A tiny loopback HTTP server on its own thread that records each POST and answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    receiver.deliveries.append(({k: v for k, v in self.headers.items()}, body))
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/fal/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        """Block (bounded) until `count` deliveries arrived."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.deliveries) >= count, timeout)
        assert ok, f"only {len(self.deliveries)} webhook deliveries arrived"
        return list(self.deliveries)

    def close(self) -> None:
        """Stop serving and join the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
