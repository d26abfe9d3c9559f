"""`fal-persona web`'s request gate: the token, loopback Host names, same-origin websockets.

Off loopback (or when asked) every HTTP and websocket request must carry the start-up token as
`?token=` or as the cookie the first page sets; else 403, compared in constant time. On loopback
without a token, the Host must be a loopback name (a DNS-rebound name is refused). A websocket
whose Origin is another site is always refused: a page from elsewhere open in the same browser
cannot start a session that spends money. The access log never shows a query string.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware

from agent.loopback import is_loopback


def cookie_name(port: int) -> str:
    """Cookies ignore ports: one name per port keeps two servers on one host apart."""
    return f"fal_persona_token_{port}"


def _host_name(netloc: str) -> str:
    """`[::1]:8000` -> `::1`, `box:80` -> `box`."""
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def _same_origin(request: web.Request) -> bool:
    """A websocket's Origin (browsers always send one) names the host it was served from."""
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser: no other site's page can be behind it
        return True
    _, _, netloc = origin.partition("://")
    return bool(netloc) and netloc.lower() == request.host.lower()


def token_gate(token: str | None, port: int) -> Middleware:
    """Middleware: the token (when set), loopback Host names (when not) and same-origin websockets."""
    expected = token.encode() if token else b""
    cookie = cookie_name(port)

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None and not is_loopback(_host_name(request.host)):
            raise web.HTTPForbidden(text="this server answers only to localhost names\n")
        from_query = request.query.get("token")
        if token is not None:
            given = (from_query if from_query is not None else request.cookies.get(cookie, "")).encode()
            if not hmac.compare_digest(given, expected):
                raise web.HTTPForbidden(text="a valid ?token= is required\n")
        if request.path == "/ws" and not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin websocket refused\n")
        response = await handler(request)
        if token is not None and from_query is not None and not response.prepared:
            # The page's websocket URL carries no query of ours: the cookie authorises it.
            response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
        return response

    return gate


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log lines without the query string (it may hold the token)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.3fs", request.method, request.path, response.status, time)
