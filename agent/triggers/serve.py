"""`fal-persona webhooks serve`: the listener as a long-running server, in one or N processes.

Everything it is tuned by comes from ``Settings.webhooks`` (``FAL_PERSONA_WEBHOOK_*``, see
`.env.example`): the limits, where deliveries are checked (``check``), the inbox's fsync level
(``sync``) and uvicorn's parser and loop (``http``, ``loop``).
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable

from agent.settings import Settings
from agent.triggers.http_server import bind_socket, uvicorn_server
from agent.triggers.inbox import Inbox
from agent.triggers.listener import Check, Listener, base_url, build_listener
from agent.triggers.server import WEBHOOK_PATH
from tools.errors import AppError

MAX_WORKERS = 64

_WHERE = {"process": "a checker process", "thread": "threads", "inline": "the event loop"}


class ServeError(AppError):
    """Why the listener cannot start (the CLI prints it and exits non-zero)."""


def resolve_check(check: str, workers: int) -> Check:
    """Settings.webhooks.check with "auto" decided: the checker process for one worker (it
    inherits its socket: POSIX only), the event loop when processes give the parallelism."""
    if check == "auto":
        return ("process" if os.name == "posix" else "thread") if workers == 1 else "inline"
    if check not in _WHERE:
        raise ServeError(f"unknown check mode {check!r}")
    return check  # type: ignore[return-value]  # one of _WHERE's keys, checked just above


def _say(text: str) -> None:
    print(text, flush=True)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, workers: int = 1,
          say: Callable[[str], None] = _say) -> int:
    """Bind, say where, and serve until stopped; returns the exit status."""
    from agent.triggers.rules import RuleError, load_rules
    from agent.triggers.schedules import load_schedules

    tuning = settings.webhooks
    host = host or settings.webhook_host
    port = settings.webhook_port if port is None else port
    if not 1 <= workers <= MAX_WORKERS:
        raise ServeError(f"--workers must be between 1 and {MAX_WORKERS}")
    check = resolve_check(tuning.check, workers)
    try:  # load the files once up front so a bad rule fails here, not in every worker
        rules, schedules = load_rules(), load_schedules()
    except RuleError as exc:
        raise ServeError(str(exc)) from None
    # The checker process, or sibling workers, write to the inbox beside this one: queue on the file lock.
    shared = workers > 1 or check == "process"

    def build(primary: bool) -> Listener:
        return build_listener(settings, inbox=Inbox(synchronous=tuning.sync, shared_writers=shared), rules=rules,
                              schedules=schedules, actions=primary, check=check)

    try:
        sock = bind_socket(host, port, reuse_port=workers > 1)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    url = base_url(host, sock.getsockname()[1])
    say(f"Listening on {url}")
    say(f"Webhook URL to give fal: {settings.webhook_public_url or f'{url}{WEBHOOK_PATH}'}")
    say(f"JWKS: {settings.fal_config().jwks_url}")
    say(f"Inbox: {Inbox().path}")
    say(f"Rules: {len(rules)}; schedules: {len(schedules)}")
    say(f"Verifying and storing in {_WHERE[check]}")
    run = functools.partial(serve_socket, settings)
    if workers == 1:
        run(build(True), sock)
        return 0
    from agent.triggers.workers import run_workers

    say(f"Workers: {workers} processes (rules and schedules run in worker 0)")
    return run_workers(workers, sock, build, run)


def serve_socket(settings: Settings, listener: Listener, sock: socket.socket) -> None:
    """Serve `listener` on `sock` in this process until a signal stops it."""
    from agent.triggers import gctune

    server = uvicorn_server(listener.app, settings.webhooks)
    gctune.for_serving()  # everything is loaded by now
    server.run(sockets=[sock])
