"""The sandbox as one Starlette app: queue API at the root, the synchronous run host under /_run,
platform API under /v1, the JWKS at /.well-known/jwks.json, generated media under /_media,
the upload emulation (REST token and storage calls under /storage, the v3 CDN under /files; see
`sandbox.routes_uploads`), controls under /_sandbox."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from sandbox import controls, routes_platform, routes_run, routes_uploads
from sandbox.config import SandboxConfig
from sandbox.http import json_response, platform_error, queue_error, state_of
from sandbox.routes_queue import queue_entry
from sandbox.state import SandboxState

log = logging.getLogger(__name__)
_QUEUE_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


async def jwks(request: Request) -> Response:
    """The public webhook-signing key (no auth, like fal's)."""
    return json_response(state_of(request).signer.jwks(), headers={"Cache-Control": "max-age=3600"})


async def media(request: Request) -> Response:
    """A generated media file."""
    from sandbox.media import CONTENT_TYPES

    name = request.path_params["name"]
    store = state_of(request).media
    ext = name.rpartition(".")[2]
    headers = {"Cache-Control": "max-age=86400"}
    stored = store.stored_path(name)
    if stored is not None and stored.exists():
        return FileResponse(stored, media_type=CONTENT_TYPES[ext], headers=headers)
    data = store.content(name) if store.known(name) else None
    if data is None:
        return queue_error(404, f"Media {name} not found", "not_found")
    return Response(data, media_type=CONTENT_TYPES[ext], headers=headers)


async def v1_unknown(request: Request) -> Response:
    """Any other /v1 path."""
    return platform_error(404, "not_found", f"Resource not found: {request.url.path}")


async def sandbox_unknown(request: Request) -> Response:
    """Any other /_sandbox path."""
    return queue_error(404, f"No sandbox control at {request.url.path}", "not_found")


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if request.url.path.startswith("/v1/"):
        kind = {404: "not_found", 405: "validation_error"}.get(status, "validation_error")
        return platform_error(status, kind, str(getattr(exc, "detail", "")) or "Request failed")
    return queue_error(status, str(getattr(exc, "detail", "")) or "Request failed", "http_error")


async def _crash(request: Request, exc: Exception) -> Response:
    # A bug in the sandbox, not the client's fault: say so without leaking internals.
    log.exception("sandbox error on %s %s", request.method, request.url.path)
    return queue_error(500, "Internal sandbox error", "internal_server_error")


class _Ticker:
    """Starts the state's background ticker on the first request (ASGITransport skips lifespan)."""

    def __init__(self, app, state: SandboxState) -> None:
        self.app, self.state, self.started = app, state, False

    async def __call__(self, scope, receive, send) -> None:
        if not self.started and scope["type"] == "http":
            self.started = True
            self.state.ensure_ticker()
        await self.app(scope, receive, send)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A fresh sandbox; its state is at `app.state.sandbox`."""
    state = SandboxState(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.ensure_ticker()
        try:
            yield
        finally:
            await state.aclose()

    routes = [
        *controls.ROUTES,
        Route("/_sandbox/{rest:path}", sandbox_unknown, methods=_QUEUE_METHODS),
        Route("/_media/{name}", media, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        *routes_uploads.ROUTES,
        Route(routes_run.RUN_PREFIX + "/{path:path}", routes_run.run_entry, methods=routes_run.METHODS),
        Route("/v1/models/pricing/estimate", routes_platform.estimate, methods=["POST"]),
        Route("/v1/models/pricing", routes_platform.pricing, methods=["GET"]),
        Route("/v1/models", routes_platform.models, methods=["GET"]),
        Route("/v1/{rest:path}", v1_unknown, methods=_QUEUE_METHODS),
        Route("/{path:path}", queue_entry, methods=_QUEUE_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_Ticker, state=state)],
                    exception_handlers={HTTPException: _http_error, Exception: _crash})
    app.state.sandbox = state
    return app
