"""`fal-persona webhooks serve|list` and `fal-persona schedules list`.

`webhooks serve` is agent.triggers.serve; it is tuned by Settings.webhooks (the
``FAL_PERSONA_WEBHOOK_*`` variables in `.env.example`).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from agent.cli import CliError
from agent.settings import Settings, from_args


def _settings(args: argparse.Namespace) -> Settings:
    return from_args(args)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _serve(args: argparse.Namespace) -> int:
    from agent.triggers.serve import ServeError, serve

    try:
        return serve(_settings(args), host=args.host, port=args.port, workers=getattr(args, "workers", 1) or 1)
    except ServeError as exc:
        raise CliError(str(exc)) from None


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

