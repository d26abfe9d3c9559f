"""The HTTP clients the chat model talks through: every request body is redacted on its way out.

Whatever a turn holds (a tool's error text, an answer the model echoed back, a user's paste)
reaches the model provider only through these clients, so this is where the model request is
made secret-free, whichever part of the agent put the text there. Headers are left alone: the
provider's own key has to be sent in `Authorization`.
"""

from __future__ import annotations

import functools
import importlib
import json
from types import ModuleType
from typing import Any

from agent.redact import current

__all__ = ["redacted_body", "model_http_clients"]


def redacted_body(body: bytes, content_type: str) -> bytes | None:
    """`body` with every secret masked, or None when it holds none (send it as it is)."""
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    red = current()
    if "json" in content_type:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None:
            if red.clean_json(text):
                return None
            clean = red(data)
            return None if clean == data else json.dumps(clean, ensure_ascii=False).encode("utf-8")
    clean_text = red.text(text)
    return None if clean_text == text else clean_text.encode("utf-8")


def _sdk_httpx() -> ModuleType:
    """The httpx the OpenAI SDK is built on (`httpx2` from openai 3 on, an API-identical twin):
    a transport handed to its client must come from the same library."""
    import openai

    base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__[1:] if c.__name__ == "AsyncClient")
    return importlib.import_module(base.__module__.split(".")[0])


@functools.cache
def _transports() -> tuple[type, type]:
    """(async, sync) redacting transport classes over the SDK's httpx."""
    hx = _sdk_httpx()

    def rebuilt(request: Any, body: bytes) -> Any:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        return hx.Request(request.method, request.url, headers=headers, content=body,
                          extensions=request.extensions)

    class RedactingAsyncTransport(hx.AsyncBaseTransport):  # type: ignore[misc,name-defined]  # hx: the SDK's httpx, found at run time
        """Redacts each request's body, then sends it with the SDK's own transport."""

        def __init__(self) -> None:
            self._inner = hx.AsyncHTTPTransport()

        async def handle_async_request(self, request: Any) -> Any:
            body = redacted_body(await request.aread(), request.headers.get("content-type", ""))
            return await self._inner.handle_async_request(request if body is None else rebuilt(request, body))

        async def aclose(self) -> None:
            await self._inner.aclose()

    class RedactingTransport(hx.BaseTransport):  # type: ignore[misc,name-defined]  # as above
        """The synchronous twin."""

        def __init__(self) -> None:
            self._inner = hx.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            body = redacted_body(request.read(), request.headers.get("content-type", ""))
            return self._inner.handle_request(request if body is None else rebuilt(request, body))

        def close(self) -> None:
            self._inner.close()

    return RedactingAsyncTransport, RedactingTransport


def model_http_clients() -> dict[str, Any]:
    """`http_client` and `http_async_client` for `ChatOpenAI`: the OpenAI SDK's own client
    classes (its connection limits and redirects) over redacting transports. Timeouts stay
    the model's own (`ChatOpenAI(timeout=...)` applies them to each request)."""
    import openai

    async_transport, sync_transport = _transports()
    return {"http_client": openai.DefaultHttpxClient(transport=sync_transport()),
            "http_async_client": openai.DefaultAsyncHttpxClient(transport=async_transport())}
