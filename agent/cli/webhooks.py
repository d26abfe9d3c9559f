"""`fal-persona webhooks serve|list` and `fal-persona schedules list`.

`webhooks serve` honours environment switches used by tests and the benchmark:
``FAL_PERSONA_WEBHOOK_BARE=1`` answers 200 without verifying or storing (a baseline, never for
real use), ``FAL_PERSONA_WEBHOOK_SYNC`` (FULL|NORMAL) overrides the inbox's fsync level, and
``FAL_PERSONA_WEBHOOK_HTTP`` (auto|h11|httptools) / ``FAL_PERSONA_WEBHOOK_LOOP``
(auto|asyncio|uvloop) pick uvicorn's protocol and loop, and ``FAL_PERSONA_WEBHOOK_CHECK``
(auto|process|thread|inline) where deliveries are verified and stored (auto: the checker
process for one worker, see checker.py; the event loop for ``--workers`` > 1, see intake.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from typing import Any

from agent.cli import CliError
from agent.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "user", None):
        settings = settings.model_copy(update={"user": args.user})
    if getattr(args, "no_log", False):
        settings = settings.model_copy(update={"no_log": True})
    return settings


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _serve(args: argparse.Namespace) -> int:
    from agent.triggers.inbox import Inbox
    from agent.triggers.listener import (
        base_url,
        bind_socket,
        build_listener,
        uvicorn_server,
    )
    from agent.triggers.rules import RuleError, load_rules
    from agent.triggers.schedules import load_schedules
    from agent.triggers.server import WEBHOOK_PATH

    settings = _settings(args)
    host = args.host or settings.webhook_host
    port = settings.webhook_port if args.port is None else args.port
    workers = getattr(args, "workers", 1) or 1
    if workers < 1 or workers > 64:
        raise CliError("--workers must be between 1 and 64")
    bare = os.environ.get("FAL_PERSONA_WEBHOOK_BARE", "") in ("1", "true", "yes")
    sync = os.environ.get("FAL_PERSONA_WEBHOOK_SYNC", "FULL").upper()
    if sync not in ("FULL", "NORMAL"):
        raise CliError("FAL_PERSONA_WEBHOOK_SYNC must be FULL or NORMAL")
    check = os.environ.get("FAL_PERSONA_WEBHOOK_CHECK", "auto").lower()
    if check not in ("auto", "thread", "inline", "process"):
        raise CliError("FAL_PERSONA_WEBHOOK_CHECK must be auto, thread, inline or process")
    if check == "auto":  # the checker process inherits its socket: POSIX only
        check = ("process" if os.name == "posix" else "thread") if workers == 1 else "inline"
    try:  # load the files once up front so a bad rule fails here, not in every worker
        rules, schedules = (None, None) if bare else (load_rules(), load_schedules())
    except RuleError as exc:
        raise CliError(str(exc)) from None

    def build(primary: bool):
        # The checker process writes to the inbox beside this one: queue on the file lock.
        shared = workers > 1 or check == "process"
        return build_listener(settings, bare=bare, inbox=Inbox(synchronous=sync, shared_writers=shared), rules=rules,
                              schedules=schedules, actions=primary, check=check)

    def serve(listener, sock) -> None:
        from agent.triggers import gctune

        server = uvicorn_server(listener.app, http=os.environ.get("FAL_PERSONA_WEBHOOK_HTTP", "auto"),
                                loop=os.environ.get("FAL_PERSONA_WEBHOOK_LOOP", "auto"))
        gctune.for_serving()  # everything is loaded by now
        server.run(sockets=[sock])

    try:
        sock = bind_socket(host, port, reuse_port=workers > 1)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    url = base_url(host, sock.getsockname()[1])
    public = settings.webhook_public_url or f"{url}{WEBHOOK_PATH}"
    print(f"Listening on {url}", flush=True)
    print(f"Webhook URL to give fal: {public}", flush=True)
    if bare:
        print("BARE MODE: nothing is verified or stored (benchmark baseline only)", flush=True)
    else:
        print(f"JWKS: {settings.fal_config().jwks_url}", flush=True)
        print(f"Inbox: {Inbox().path}", flush=True)
        print(f"Rules: {len(rules or [])}; schedules: {len(schedules or [])}", flush=True)
        where = {"process": "a checker process", "thread": "threads", "inline": "the event loop"}[check]
        print(f"Verifying and storing in {where}", flush=True)
    if workers == 1:
        serve(build(True), sock)
        return 0
    from agent.triggers.workers import run_workers

    print(f"Workers: {workers} processes (rules and schedules run in worker 0)", flush=True)
    return run_workers(workers, sock, build, serve)


def _list(args: argparse.Namespace) -> int:
    from agent.triggers.inbox import Inbox

    inbox = Inbox()
    try:
        rows = [row.summary() for row in inbox.list(limit=max(1, args.limit))]
    finally:
        inbox.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No webhook events yet.")
        return 0
    for row in rows:
        line = (f"{_when(row['received_at'])}  {row['request_id']}  {row['status']:<5}  "
                f"{row['state']:<7}  tries={row['attempts']}  {row['endpoint_id'] or '-'}")
        if row["last_error"]:
            line += f"  error: {row['last_error'][:120]}"
        elif row["outcome"]:
            line += f"  {row['outcome'][:120]}"
        print(line)
    return 0


def run_webhooks(args: argparse.Namespace) -> int:
    """Handler for `fal-persona webhooks ...`."""
    if args.webhooks_command == "serve":
        return _serve(args)
    if args.webhooks_command == "list":
        return _list(args)
    raise CliError(f"unknown webhooks command {args.webhooks_command!r}")


def schedule_rows(now: float | None = None) -> list[dict[str, Any]]:
    """Each schedule with its next run, as JSON-ready dicts."""
    from agent.triggers.schedules import load_schedules

    when = time.time() if now is None else now
    rows = []
    for s in load_schedules():
        action = "+".join(k for k, v in (("tool", s.tool), ("save_media", s.save_media),
                                         ("prompt", s.prompt)) if v)
        next_run = s.next_run(when)
        rows.append({"name": s.name, "cron": s.cron, "timezone": s.timezone or "UTC",
                     "persona": s.persona, "action": action, "tool": s.tool, "prompt": s.prompt,
                     "next_run": _when(next_run).replace(" ", "T"), "next_run_epoch": next_run})
    return rows


def run_schedules(args: argparse.Namespace) -> int:
    """Handler for `fal-persona schedules list`."""
    from agent.triggers.rules import RuleError

    try:
        rows = schedule_rows()
    except RuleError as exc:
        raise CliError(str(exc)) from None
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No schedules. Add [[schedules]] to a persona file or the triggers file.")
        return 0
    for row in rows:
        what = row["tool"] or row["prompt"] or ""
        print(f"{row['name']:<20} {row['cron']:<16} next {row['next_run']}  "
              f"{row['persona'] or '-'}: {what[:60]}")
    return 0

