"""`fal-persona mcp --transport http`'s gate: a bearer token off loopback (or when asked).

As with `fal-persona web` (agent/tui/web_gate.py): a server bound to an address other
machines can reach gets a fresh random token at start, printed once on stderr (never logged),
and every HTTP request must carry it, as `Authorization: Bearer <token>` (what MCP clients
send; a persona's `[[mcp_servers]]` gives it in `headers`) or as `?token=<token>` in the URL.
Anything else is answered 401 before the MCP app sees it; the comparison takes constant time.
On loopback no token is needed (unless asked for), and the SDK's DNS-rebinding protection
refuses Host names that are not loopback ones.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from agent.loopback import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_BYTES = 24


def make_token(host: str, require_token: bool = False) -> str | None:
    """A fresh random token when the server needs one (off loopback, or asked), else None."""
    return secrets.token_urlsafe(TOKEN_BYTES) if require_token or not is_loopback(host) else None


def presented(scope: Scope) -> str | None:
    """The token a request carries: its `Authorization: Bearer` header, else `?token=`."""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"authorization":
            scheme, _, credential = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
    query = scope.get("query_string") or b""
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == "token":
            return value
    return None


class TokenGate:
    """ASGI middleware: HTTP requests without the token get 401; lifespan passes through."""

    def __init__(self, app: Asgi, token: str) -> None:
        if not token:
            raise ValueError("the gate needs a non-empty token")
        self.app = app
        self._expected = token.encode("utf-8")

    def allows(self, scope: Scope) -> bool:
        """Whether `scope` carries the token."""
        given = presented(scope)
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket") or self.allows(scope):
            await self.app(scope, receive, send)
            return
        if scope.get("type") == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "unauthorized", "error_description":
                           "this MCP server needs its token: Authorization: Bearer <token> or ?token=<token>"}
                          ).encode("utf-8")
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="fal-persona-mcp"')]})
        await send({"type": "http.response.body", "body": body})
