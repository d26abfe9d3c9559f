"""`fal-persona`: the command line. Each subcommand's work lives in its own module, imported
only when that subcommand runs, so `fal-persona --help` and the TUI start fast."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tools.errors import AppError

if TYPE_CHECKING:  # pragma: no cover
    from agent.applog import Console

# subcommand -> "module:function"; each function takes the parsed args and returns an exit code.
HANDLERS = {
    "tui": "agent.cli.tui:run",
    "ask": "agent.cli.ask:run",
    "logs": "agent.cli.logs:run",
    "sandbox": "agent.cli.sandbox_cmd:run",
    "webhooks": "agent.cli.webhooks:run_webhooks",
    "schedules": "agent.cli.webhooks:run_schedules",
    "web": "agent.tui.web:run",
    "mcp": "agent.cli.mcp:run",
}

SCREEN_COMMANDS = frozenset({"tui", "web", "mcp"})
"""Commands whose output is a screen or a protocol: not wrapped by the redacting streams."""


class CliError(AppError):
    """A user-facing failure: printed as one line on stderr, exit status 2."""


def _console(command: str, args: argparse.Namespace) -> Console:
    """What the log shows on stderr: nothing in the TUI (Textual owns the terminal), the chosen
    level for servers (an access log, start-up lines), warnings and errors for the rest."""
    if command == "tui":
        return "none"
    serving = (command in ("sandbox", "web") or (command == "webhooks" and args.webhooks_command == "serve")
               or (command == "mcp" and getattr(args, "transport", "stdio") == "http"))
    return "level" if serving else "warnings"


def _log_level(text: str) -> str:
    from agent.applog import level_number

    try:
        level_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip().upper()


def _start(args: argparse.Namespace, command: str) -> None:
    """Resolve the settings once (environment, `.env`, flags), then fix the data dir and start
    the log from them; handlers read the same settings back with `agent.settings.from_args`."""
    from agent import applog, locations
    from agent.settings import from_args

    settings = from_args(args)
    args.settings = settings
    locations.use_settings(settings)
    applog.configure(settings.log_level, console=_console(command, args))
    action = getattr(args, f"{command}_command", None)  # `webhooks serve`, `logs list`...
    logging.getLogger(__name__).info("fal-persona %s started (pid %d, data dir %s)",
                                     f"{command} {action}" if action else command, os.getpid(), locations.home())


def _shared_flags(sub_level: bool) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Flags accepted both before and after the subcommand.

    At the subcommand level their defaults are SUPPRESS, so `fal-persona --user U ask ...`
    keeps U instead of the subparser resetting it to its own default.
    """
    def default(value: object) -> object:
        return argparse.SUPPRESS if sub_level else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--user", default=default(None), help="who is asking (default: the OS user)")
    common.add_argument("--persona", default=default(None), help="persona to use (default: producer)")
    common.add_argument("--no-log", action="store_true", default=default(False),
                        help="write nothing to the transcript")
    common.add_argument("--log-level", type=_log_level, default=default(None), metavar="LEVEL",
                        help="level of the log file <data dir>/logs/fal-persona.log: DEBUG, INFO, "
                             "WARNING, ERROR or CRITICAL (default: FAL_PERSONA_LOG_LEVEL, else INFO)")
    # The TUI (no subcommand) and `ask` run the webhook listener in-process.
    listen = argparse.ArgumentParser(add_help=False)
    listen.add_argument("--listen", action=argparse.BooleanOptionalAction, default=default(None),
                        help="run the webhook listener and attach its URL to submitted jobs (default: on "
                             "with the sandbox; live only when FAL_PERSONA_WEBHOOK_URL is set)")
    return common, listen


def _resume_flags(sub_level: bool) -> argparse.ArgumentParser:
    """`--continue` / `--resume ID`: go on with a stored chat (the TUI and `ask`)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_mutually_exclusive_group()
    group.add_argument("--continue", "-c", dest="continue_", action="store_true",
                       default=argparse.SUPPRESS if sub_level else False,
                       help="go on with the most recent chat")
    group.add_argument("--resume", metavar="ID", default=argparse.SUPPRESS if sub_level else None,
                       help="go on with the chat whose session id is (or starts with) ID")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    common, listen = _shared_flags(sub_level=False)
    sub_common, sub_listen = _shared_flags(sub_level=True)

    parser = argparse.ArgumentParser(
        prog="fal-persona",
        description="Drive fal.ai from a conversation. With no subcommand, opens the chat TUI.",
        parents=[common, listen, _resume_flags(sub_level=False)],
    )
    sub = parser.add_subparsers(dest="command")

    ask = sub.add_parser("ask", parents=[sub_common, sub_listen, _resume_flags(sub_level=True)],
                         help="run one request without the TUI")
    ask.add_argument("text", help="the request, in words or in the planner's grammar")
    ask.add_argument("--json", action="store_true", help="print answer, tool calls and results as JSON")
    decide = ask.add_mutually_exclusive_group()
    decide.add_argument("--yes", action="store_true", help="approve every spend/cancel")
    decide.add_argument("--no-approve", action="store_true", help="reject every spend/cancel")
    keep = ask.add_mutually_exclusive_group()
    keep.add_argument("--save", metavar="DIR",
                      help="save result media here (default: the data dir's media/)")
    keep.add_argument("--no-save", action="store_true", help="do not download result media")
    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
        return value

    ask.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                     help="stop the request after this long (exit status 8)")

    logs = sub.add_parser("logs", parents=[sub_common], help="read the transcript")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    ll = logs_sub.add_parser("list", help="list sessions")
    ll.add_argument("--limit", type=int, default=20)
    ls = logs_sub.add_parser("show", help="show one session's events")
    ls.add_argument("session", nargs="?", help="session id (default: the latest)")
    lq = logs_sub.add_parser("search", help="full-text search")
    lq.add_argument("query")
    lq.add_argument("--limit", type=int, default=50)
    le = logs_sub.add_parser("export", help="export events")
    le.add_argument("session", nargs="?", help="session id (default: all)")
    le.add_argument("--format", choices=["jsonl", "md"], default="jsonl")
    le.add_argument("--output", "-o", help="file to write (default: stdout)")
    lo = logs_sub.add_parser("off", help="turn the transcript off persistently")
    lo.set_defaults(switch=False)
    lon = logs_sub.add_parser("on", help="turn the transcript back on")
    lon.set_defaults(switch=True)

    sb = sub.add_parser("sandbox", parents=[sub_common], help="run the local fal.ai sandbox")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8765)
    sb.add_argument("--tls", action="store_true", help="serve https with a self-signed certificate")
    sb.add_argument("--seed", help="hex seed for the webhook signing key (default: fresh)")
    sb.add_argument("--speed", type=float, default=1.0, help="clock speed-up factor")
    sb.add_argument("--locked-key", action="append", default=None, help="a key id that answers 403")

    wh = sub.add_parser("webhooks", parents=[sub_common], help="receive and inspect fal.ai webhooks")
    wh_sub = wh.add_subparsers(dest="webhooks_command", required=True)
    ws = wh_sub.add_parser("serve", help="run the webhook listener")
    ws.add_argument("--host", default=None)
    ws.add_argument("--port", type=int, default=None)
    ws.add_argument("--workers", type=int, default=1, help="listener processes sharing the port")
    wl = wh_sub.add_parser("list", help="list received events")
    wl.add_argument("--json", action="store_true")
    wl.add_argument("--limit", type=int, default=50)

    sc = sub.add_parser("schedules", parents=[sub_common], help="scheduled flows")
    sc_sub = sc.add_subparsers(dest="schedules_command", required=True)
    scl = sc_sub.add_parser("list", help="list schedules with their next run")
    scl.add_argument("--json", action="store_true")

    wb = sub.add_parser("web", parents=[sub_common, sub_listen],
                        help="serve the chat TUI in a browser, one app per tab")
    wb.add_argument("--host", default="127.0.0.1", help="interface to bind (off loopback a token is required)")
    wb.add_argument("--port", type=int, default=8790, help="port to bind (0: any free port)")
    wb.add_argument("--require-token", action="store_true", help="require the start-up token on loopback too")

    mc = sub.add_parser("mcp", parents=[sub_common], help="serve the persona's tools to MCP clients")
    mc.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                    help="stdio (default: for a client that starts this command) or streamable HTTP")
    mc.add_argument("--host", default="127.0.0.1",
                    help="interface to bind with --transport http (off loopback a token is required)")
    mc.add_argument("--require-token", action="store_true",
                    help="with --transport http, require the start-up token on loopback too")
    mc.add_argument("--port", type=int, default=8791, help="port with --transport http (0: any free port)")
    mc.add_argument("--allow-spend", action="store_true",
                    help="approve what the persona asks approval for when the client cannot be asked "
                         "(no MCP elicitation); the budget still applies")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fal-persona` console script."""
    args = build_parser().parse_args(argv)
    command = args.command or "tui"
    module_name, func_name = HANDLERS[command].split(":")
    from agent.redact import redacting_streams

    # The screen-drawing commands redact their events themselves; every other command's
    # stdout and stderr (answers, JSON, exports, reasons, tracebacks) passes the redactor.
    guard = contextlib.nullcontext() if command in SCREEN_COMMANDS else redacting_streams()
    with guard:
        try:
            return _run(module_name, func_name, args)
        except Exception:  # a crash: its traceback goes out redacted too, exit status 1
            import traceback

            sys.stderr.write(traceback.format_exc())
            return 1


def _run(module_name: str, func_name: str, args: argparse.Namespace) -> int:
    """Run one subcommand's handler; user-facing failures become a line on stderr."""
    try:
        _start(args, args.command or "tui")
        handler = getattr(importlib.import_module(module_name), func_name)
        code = handler(args)
    except KeyboardInterrupt:
        print("fal-persona: interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"fal-persona: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        # Settings that do not validate: the variable at fault, never the value it held.
        from tools.fal.config import settings_error_text

        print(f"fal-persona: {settings_error_text(exc)}", file=sys.stderr)
        return 2
    return int(code or 0)
