"""`fal-persona mcp [--persona P] [--transport stdio|http] [--host H --port N] [--allow-spend]`.

Serves the persona's fal.ai tools to an MCP client (see `agent.mcp.server`). With no FAL_KEY
the built-in sandbox runs for as long as the server does, as with `ask`. Over stdio, stdout
belongs to the protocol: every message of ours goes to stderr. Over HTTP the endpoint is
`http://HOST:PORT/mcp` (port 0: a free one), printed on stderr once it accepts connections;
off loopback (or with `--require-token`) with the token every request must carry (see
`agent.mcp.auth`). The transcript is committed just after each reply (`agent.mcp.record`)
and flushed before the process ends, SIGTERM included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

from agent.cli import CliError


def _say(text: str) -> None:
    print(f"fal-persona: {text}", file=sys.stderr, flush=True)


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

    from agent.mcp.auth import TokenGate, make_token
    from agent.mcp.bridge import ToolBridge
    from agent.mcp.record import DeferredTranscript
    from agent.mcp.server import PersonaServer

    sock = _bind(args.host, args.port) if args.transport == "http" else None
    runtime = await asyncio.to_thread(_build, args)
    transcript = DeferredTranscript(runtime.transcript) if runtime.transcript is not None else None
    # The runtime's own runner never runs a turn here (each client has a session of its own):
    # its session, still empty, is not written.
    forget = getattr(runtime.transcript, "forget_session", None)
    if callable(forget):
        forget(runtime.runner.session_id)
    try:
        if runtime.mode == "sandbox":
            _say(f"no FAL_KEY set, using the built-in sandbox at {runtime.sandbox_url}")
        for notice in getattr(runtime, "notices", None) or []:
            _say(str(notice))
        server = PersonaServer(ToolBridge(runtime.runner, transcript),
                               allow_spend=args.allow_spend, host=args.host, port=args.port)
        persona = runtime.persona.name
        if sock is None:
            _say(f"MCP server for the {persona} persona on stdio")
            with _flushed_on_sigterm(transcript):
                await server.run_stdio_async()
            return 0
        token = make_token(args.host, bool(getattr(args, "require_token", False)))
        app: Any = server.streamable_http_app()
        if token is not None:
            app = TokenGate(app, token)
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
                if token is not None:
                    _say(f"token: {token}")
                    _say("  every request must carry it: Authorization: Bearer <token> (or ?token=<token>)")

        waiter = asyncio.create_task(announce())
        try:
            await http.serve(sockets=[sock])
        finally:
            waiter.cancel()
        return 0
    finally:
        if sock is not None:
            sock.close()
        if transcript is not None:  # every call's rows, committed before the store closes
            await asyncio.to_thread(transcript.close)
        await runtime.aclose()


@contextlib.contextmanager
def _flushed_on_sigterm(transcript: Any) -> Iterator[None]:
    """SIGTERM (how an MCP client stops a stdio server that outlived its stdin) first commits
    every call's rows, then ends the process as SIGTERM would have. A clean exit is not to be
    had here: the SDK reads stdin in a thread that no cancellation interrupts."""
    loop = asyncio.get_running_loop()

    def on_term() -> None:
        if transcript is not None:
            transcript.close(timeout=5.0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        loop.add_signal_handler(signal.SIGTERM, on_term)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run(args: Any) -> int:
    """Entry point for `fal-persona mcp`."""
    return asyncio.run(_serve(args))
