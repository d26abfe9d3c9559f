"""`fal-persona mcp [--persona P] [--transport stdio|http] [--host H --port N] [--allow-spend]`.

Serves the persona's fal.ai tools to an MCP client (see `agent.mcp.server`). With no FAL_KEY
the built-in sandbox runs for as long as the server does, as with `ask`. Over stdio, stdout
belongs to the protocol: every message of ours goes to stderr. Over HTTP the endpoint is
`http://HOST:PORT/mcp` (port 0: a free one), printed on stderr once it accepts connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from typing import Any

from agent.cli import CliError


def _say(text: str) -> None:
    print(f"fal-persona: {text}", file=sys.stderr, flush=True)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a CliError saying why not (bad port, busy, no such interface)."""
    if not 0 <= port <= 65535:
        raise CliError(f"--port must be 0-65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family = infos[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _build(args: Any) -> Any:
    """The runtime for the persona (sandbox without FAL_KEY); CliError on bad settings/persona."""
    from pydantic import ValidationError

    from agent.core.runtime import build_runtime
    from agent.redact import redact_text
    from agent.settings import from_args, with_flags
    from tools.fal.config import settings_error_text

    try:
        # No webhook listener: an MCP client asks for status and results itself.
        settings = with_flags(from_args(args), listen=False)
        return build_runtime(settings, args.persona, source="mcp", user=args.user)
    except ValidationError as exc:
        raise CliError(settings_error_text(exc)) from None
    except Exception as exc:  # a bad persona, a sandbox that did not start
        raise CliError(redact_text(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__) from None


async def _serve(args: Any) -> int:
    import uvicorn

    from agent.mcp.bridge import ToolBridge
    from agent.mcp.server import PersonaServer

    sock = _bind(args.host, args.port) if args.transport == "http" else None
    runtime = await asyncio.to_thread(_build, args)
    try:
        if runtime.mode == "sandbox":
            _say(f"no FAL_KEY set, using the built-in sandbox at {runtime.sandbox_url}")
        for notice in getattr(runtime, "notices", None) or []:
            _say(str(notice))
        server = PersonaServer(ToolBridge(runtime.runner, runtime.transcript),
                               allow_spend=args.allow_spend, host=args.host, port=args.port)
        persona = runtime.persona.name
        if sock is None:
            _say(f"MCP server for the {persona} persona on stdio")
            await server.run_stdio_async()
            return 0
        if not _loopback(args.host):
            _say(f"warning: {args.host} is not a loopback address and this server has no "
                 "authentication: anyone who reaches it can use the persona's tools")
        app = server.streamable_http_app()
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=2)
        http = uvicorn.Server(config)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else host

        async def announce() -> None:
            while not http.started and not http.should_exit:
                await asyncio.sleep(0.01)
            if http.started:
                _say(f"MCP server for the {persona} persona at http://{shown}:{port}/mcp")

        waiter = asyncio.create_task(announce())
        try:
            await http.serve(sockets=[sock])
        finally:
            waiter.cancel()
        return 0
    finally:
        if sock is not None:
            sock.close()
        await runtime.aclose()


def run(args: Any) -> int:
    """Entry point for `fal-persona mcp`."""
    return asyncio.run(_serve(args))
