"""`fal-persona web`: the chat TUI in a browser, one app process per tab (textual-serve).

textual-serve relays Textual's web driver over a websocket: every websocket gets a fresh child
process running `command`. This module builds the aiohttp app around textual-serve's pieces
(`AppService`, its static files and download manager) instead of `Server.serve`, for what a
server that can spend money needs:

- A gate (`web_gate`): a token off loopback, loopback Host names on it, same-origin
  websockets always; an access log without query strings. Children never see the token.
- Page URLs built from the request's Host: textual-serve builds them from the bind address,
  and `ws://0.0.0.0:8000` means nothing to a browser.
- Children that draw images as half-blocks (the browser terminal has no graphics protocol) and
  end with the server (SIGTERM on its death, on Linux; a quit message on a clean stop).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import TextIO

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from agent.tui.web_gate import PathOnlyAccessLogger, is_loopback, token_gate
from tools.errors import AppError

_log = logging.getLogger(__name__)

MAX_SESSIONS = 16  # tabs at once: each is a process with its own sandbox and runtime
STOP_TIMEOUT_S = 10.0  # a child that ignores "quit" this long is left to its parent-death signal
CHILD_FLAG = "--web-child"


class WebError(AppError, ValueError):
    """A `fal-persona web` option that cannot work (bad host or port)."""


def child_argv(persona: str | None = None, user: str | None = None, no_log: bool = False,
               listen: bool | None = None) -> list[str]:
    """The command line of one tab's TUI: this interpreter, the same flags as `web` was given."""
    argv = [sys.executable, "-m", "agent.tui.web", CHILD_FLAG]
    if persona:
        argv += ["--persona", persona]
    if user:
        argv += ["--user", user]
    if no_log:
        argv.append("--no-log")
    if listen is not None:
        argv.append("--listen" if listen else "--no-listen")
    return argv


def shell_command(argv: Sequence[str]) -> str:
    """textual-serve runs its command through a shell; `exec` makes the TUI the server's child."""
    return "exec " + shlex.join(argv)


# -- the app -----------------------------------------------------------------------------------
INDEX_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<link rel="stylesheet" href="/static/css/xterm.css">
<style>
@font-face { font-family: "Roboto Mono"; src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf"); }
html, body { margin: 0; height: 100%; background: #0c181f; color: #eee; font-family: monospace; }
#terminal { position: absolute; inset: 0; }
.ended { display: none; position: absolute; inset: 0; z-index: 10; align-items: center;
         justify-content: center; flex-direction: column; background: #0c181fe0; }
body.-closed .ended { display: flex; }
</style>
<script src="/static/js/textual.js"></script>
</head>
<body>
<div class="ended"><p>Session ended.</p><button type="button" onclick="location.reload()">New session</button></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="$ws_url" data-font-size="$font_size"></div>
</body>
</html>
"""


class WebApp:
    """The aiohttp app: index page, `/ws` (one `AppService` child per connection), statics.

    `services` holds the live children so a stop can tell each to quit. (No `/download` route:
    the app saves media on the server's disk and never delivers files to the browser.)"""

    def __init__(self, command: str, *, port: int, token: str | None, title: str = "fal-persona",
                 max_sessions: int = MAX_SESSIONS) -> None:
        import textual_serve

        self.command, self.port, self.token, self.title = command, port, token, title
        self.max_sessions = max_sessions
        self.statics_path = Path(textual_serve.__file__).parent / "static"  # textual.js, css, fonts
        self.download_manager = DownloadManager()  # AppService requires one
        self.services: set[AppService] = set()

    def build(self) -> web.Application:
        """The aiohttp application, gate first."""
        app = web.Application(middlewares=[token_gate(self.token, self.port)])
        app.add_routes([web.get("/", self.index), web.get("/ws", self.websocket),
                        web.static("/static", self.statics_path)])
        app.on_shutdown.append(self._stop_all)
        return app

    async def index(self, request: web.Request) -> web.Response:
        """The page: xterm.js wired to this server's `/ws`, as the browser reached it."""
        size = request.query.get("fontsize", "16")
        font_size = int(size) if size.isdigit() and 6 <= int(size) <= 64 else 16
        scheme = "wss" if request.secure else "ws"
        page = (INDEX_HTML.replace("$title", html.escape(self.title))
                .replace("$ws_url", html.escape(f"{scheme}://{request.host}/ws"))
                .replace("$font_size", str(font_size)))
        return web.Response(text=page, content_type="text/html",
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser tab: a child TUI for as long as the socket is open."""
        if len(self.services) >= self.max_sessions:
            raise web.HTTPServiceUnavailable(text=f"{self.max_sessions} sessions are open; close a tab\n")
        ws = web.WebSocketResponse(heartbeat=15)
        await ws.prepare(request)
        width, height = _size(request.query.get("width"), 80), _size(request.query.get("height"), 24)
        async def close() -> None:
            await ws.close()

        service = AppService(self.command, write_bytes=ws.send_bytes, write_str=ws.send_str,
                             close=close, download_manager=self.download_manager)
        self.services.add(service)
        try:
            await service.start(width, height)
            await _relay(ws, service)
        finally:
            self.services.discard(service)
            await _stop(service)
        return ws

    async def _stop_all(self, app: web.Application) -> None:
        await asyncio.gather(*(_stop(s) for s in list(self.services)))


def _size(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 1000 else default


async def _relay(ws: web.WebSocketResponse, service: AppService) -> None:
    """Browser -> child: keystrokes, resizes, focus; pings answered here."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            kind, data = message.json()
        except (ValueError, TypeError):
            continue  # not the page's protocol: ignored, the session stays up
        if kind == "stdin" and isinstance(data, str):
            await service.send_bytes(data.encode("utf-8"))
        elif kind == "resize" and isinstance(data, dict):
            await service.set_terminal_size(_size(str(data.get("width")), 80),
                                            _size(str(data.get("height")), 24))
        elif kind == "ping":
            await ws.send_json(["pong", data])
        elif kind == "blur":
            await service.blur()
        elif kind == "focus":
            await service.focus()


async def _stop(service: AppService) -> None:
    """Tell a child to quit and wait for it, bounded (`stop` is a no-op the second time)."""
    try:
        await asyncio.wait_for(asyncio.shield(service.stop()), STOP_TIMEOUT_S)
    except (TimeoutError, asyncio.CancelledError, OSError):
        _log.warning("a web session's app did not quit in %.0fs", STOP_TIMEOUT_S)


# -- serving -----------------------------------------------------------------------------------
DEFAULT_PORT = 8790


def _listen_socket(host: str, port: int) -> socket.socket:
    """Bind first, so the real port (0 = any free one) is known before the app is built."""
    if not 0 <= port <= 65535:
        raise WebError(f"--port must be 0-65535, not {port}")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        raise WebError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def banner(host: str, port: int, token: str | None) -> list[str]:
    """What `serve` prints at start: the URL to open (the only place the token is ever shown)."""
    shown = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    lines = [f"fal-persona web: open {url}", "  one chat app per browser tab; Ctrl+C stops the server"]
    if token:
        lines.append("  every request must carry this token (?token=, or the cookie the page sets)")
    return lines


def make_token(host: str, require_token: bool) -> str | None:
    """A fresh random token when the server needs one (off loopback, or asked for), else None."""
    return secrets.token_urlsafe(24) if require_token or not is_loopback(host) else None


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, child: Sequence[str] | None = None,
          require_token: bool = False, out: TextIO | None = None) -> int:
    """Run the web server in the foreground until SIGINT/SIGTERM; returns an exit code.

    A token is made (and printed once, in the banner) when `host` is not loopback or when
    `require_token` is set. `child` is the argv of each tab's TUI (default: `child_argv()`)."""
    out = sys.stdout if out is None else out
    token = make_token(host, require_token)
    sock = _listen_socket(host, port)
    real_port = sock.getsockname()[1]
    os.environ["FAL_PERSONA_WEB_PARENT"] = str(os.getpid())  # children check they are ours
    command = shell_command(child if child is not None else child_argv())
    app = WebApp(command, port=real_port, token=token).build()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    asyncio.run(_run(app, sock, banner(host, real_port, token), out))
    return 0


async def _run(app: web.Application, sock: socket.socket, lines: list[str], out: TextIO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log_class=PathOnlyAccessLogger,
                           shutdown_timeout=STOP_TIMEOUT_S)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        print("\n".join(lines), file=out, flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


# -- one tab's child ---------------------------------------------------------------------------
def prepare_child(env: MutableMapping[str, str]) -> None:
    """Settings every tab's TUI runs with: half-block images (xterm.js draws no sixel/kitty)."""
    env["FAL_PERSONA_IMAGES"] = "halfblock"


def _end_with_parent() -> None:
    """Linux: SIGTERM this process when the server dies, even by SIGKILL (no orphaned apps)."""
    parent = os.environ.get("FAL_PERSONA_WEB_PARENT", "")
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent.isdigit() and os.getppid() != int(parent):  # the server died before the prctl
        raise SystemExit(1)


def child_main(argv: Sequence[str]) -> int:
    """`python -m agent.tui.web --web-child [TUI flags]`: the TUI, as a web tab."""
    prepare_child(os.environ)
    _end_with_parent()
    from agent.cli import main

    return main(list(argv))


def run(args: object) -> int:
    """The `fal-persona web` handler."""
    from agent.cli import CliError

    child = child_argv(getattr(args, "persona", None), getattr(args, "user", None),
                       bool(getattr(args, "no_log", False)), getattr(args, "listen", None))
    try:
        return serve(getattr(args, "host", "127.0.0.1"), getattr(args, "port", DEFAULT_PORT), child=child,
                     require_token=bool(getattr(args, "require_token", False)))
    except WebError as exc:
        raise CliError(str(exc)) from exc


if __name__ == "__main__":
    if sys.argv[1:2] != [CHILD_FLAG]:
        sys.exit(f"usage: python -m agent.tui.web {CHILD_FLAG} [fal-persona TUI flags]")
    sys.exit(child_main(sys.argv[2:]))
