"""Running the sandbox: in a background thread (tests, the TUI, `ask`) or blocking (the CLI)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from sandbox.app import create_app
from sandbox.config import SandboxConfig


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets when it is,
    # and without it Nagle + delayed ACKs stall each two-part response by ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: Starlette, tls: tuple[Path, Path] | None) -> uvicorn.Config:
    kwargs: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on",
                              "timeout_graceful_shutdown": 2}
    if tls is not None:
        kwargs.update(ssl_certfile=str(tls[0]), ssl_keyfile=str(tls[1]))
    return uvicorn.Config(app, **kwargs)


class RunningSandbox:
    """A sandbox served by uvicorn on a background thread; a context manager.

    `url` has the real port even when port 0 was asked for. `cert_path` is set in TLS mode.
    """

    def __init__(self, app: Starlette, server: uvicorn.Server, thread: threading.Thread, url: str,
                 cert_path: Path | None) -> None:
        self.app, self.url, self.cert_path = app, url, cert_path
        self._server, self._thread = server, thread
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def state(self):
        """The SandboxState (clock, queue, faults, webhooks)."""
        return self.app.state.sandbox

    def fal_client_env(self) -> dict[str, str]:
        """Environment for the official fal_client (TLS mode; it reads these at import time):
        the queue host at the root, the synchronous run host under `/_run`, the certificate."""
        if self.cert_path is None:
            raise RuntimeError("fal_client only speaks https: start the sandbox with tls=True")
        from sandbox.routes_run import RUN_PREFIX

        host = self.url.split("://", 1)[1]
        return {"FAL_QUEUE_RUN_HOST": host, "FAL_RUN_HOST": host + RUN_PREFIX, "SSL_CERT_FILE": str(self.cert_path)}

    def advance(self, seconds: float, timeout: float = 30.0) -> float:
        """Advance the clock from another thread and wait for the webhook attempts it triggers."""
        if self.loop is None:
            raise RuntimeError("sandbox loop not running")
        future = asyncio.run_coroutine_threadsafe(self.state.advance(seconds), self.loop)
        return future.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _prepare(host: str, port: int, config: SandboxConfig | None, tls: bool,
             data_dir: Path | None) -> tuple[Any, socket.socket, Any, str]:
    """The app, the bound socket, the TLS certificate (or None) and the URL it will answer on."""
    config = config or SandboxConfig(host=host, port=port)
    cert = None
    if tls:
        from sandbox.tls import ensure_certificate

        directory = data_dir or config.data_dir
        if directory is None:
            raise ValueError("TLS needs a data_dir for its certificate")
        cert = ensure_certificate(Path(directory))
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{shown}:{sock.getsockname()[1]}"
    return create_app(config), sock, cert, url


def start_in_thread(host: str = "127.0.0.1", port: int = 0, config: SandboxConfig | None = None, *,
                    tls: bool = False, data_dir: Path | None = None, ready_timeout: float = 15.0) -> RunningSandbox:
    """Start a sandbox on a background thread and return once it accepts connections."""
    app, sock, cert, url = _prepare(host, port, config, tls, data_dir)
    server = uvicorn.Server(_uvicorn_config(app, cert))
    holder: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            loop.close()
            sock.close()

    thread = threading.Thread(target=run, name=f"fal-sandbox-{url.rsplit(':', 1)[1]}", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    running = RunningSandbox(app, server, thread, url, cert[0] if cert else None)
    running.loop = holder.get("loop")
    return running


def serve(host: str = "127.0.0.1", port: int = 8765, config: SandboxConfig | None = None, *, tls: bool = False,
          data_dir: Path | None = None, on_ready: Callable[[str, Path | None], None] | None = None) -> None:
    """Serve in the foreground until interrupted; `on_ready(url, cert_path)` runs once bound."""
    app, sock, cert, url = _prepare(host, port, config, tls, data_dir)
    if on_ready is not None:
        on_ready(url, cert[0] if cert else None)
    server = uvicorn.Server(_uvicorn_config(app, cert))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
