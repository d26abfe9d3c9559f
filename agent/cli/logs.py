"""`fal-persona logs list|show|search|export|on|off`: read the transcript, or switch it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent import locations, userconfig
from agent.cli import CliError
from agent.transcript.render import summary_line
from agent.transcript.store import TranscriptError, TranscriptStore


def _clean(value: object) -> str:
    """Printable text: control characters from stored data must not drive the terminal."""
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _note(line: str) -> None:
    sys.stderr.write(line + "\n")


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise CliError(f"{flag} must be at least 1")
    return value


def _list(store: TranscriptStore, args: argparse.Namespace) -> None:
    sessions = store.list_sessions(limit=_positive(args.limit, "--limit"))
    if not userconfig.transcript_enabled():
        _note("note: transcript logging is off; `fal-persona logs on` turns it back on")
    if not sessions:
        _note("no sessions recorded yet")
        return
    rows: list[tuple[str, ...]] = [("SESSION", "STARTED", "USER", "PERSONA", "SOURCE", "EVENTS")]
    rows += [(s["id"], (s["started_at"] or "")[:19].replace("T", " "), s["user"], s["persona"],
              s["source"], str(s["events"])) for s in sessions]
    rows = [tuple(_clean(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        _out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _latest(store: TranscriptStore) -> str:
    sessions = store.list_sessions(limit=1)
    if not sessions:
        raise CliError("no sessions recorded yet")
    return sessions[0]["id"]


def _show(store: TranscriptStore, args: argparse.Namespace) -> None:
    sid = store.resolve_session(args.session) if args.session else _latest(store)
    events = store.events(sid)
    first = events[0] if events else {}
    _out(f"session {_clean(sid)}  user {_clean(first.get('user'))}  "
         f"persona {_clean(first.get('persona'))}  events {len(events)}")
    for event in events:
        _out(summary_line(event))


def _search(store: TranscriptStore, args: argparse.Namespace) -> None:
    hits = store.search(args.query, limit=_positive(args.limit, "--limit"))
    if not hits:
        _note(f"no matches for {args.query!r}")
        return
    for hit in hits:
        _out(f"{_clean(hit['session_id'])}  {hit['ts'][:19].replace('T', ' ')}  "
             f"{hit['kind']:<14} {_clean(hit['snippet'])}")


def _export(store: TranscriptStore, args: argparse.Namespace) -> None:
    from agent.redact import redact_text

    # Rows were redacted when written; this also masks a key set since (a file skips stdout's redactor).
    text = redact_text(store.export(args.session, fmt=args.format))
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return
    path = Path(args.output).expanduser()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
    count = text.count("\n") if args.format == "jsonl" else None
    _note(f"wrote {path}" + (f" ({count} events)" if count is not None else ""))


def _switch(args: argparse.Namespace) -> None:
    userconfig.set_value("transcript", "enabled", bool(args.switch))
    state = "on" if args.switch else "off"
    _note(f"transcript logging is {state} (saved in {locations.config_file()})")


ACTIONS = {"list": _list, "show": _show, "search": _search, "export": _export}


def run(args: argparse.Namespace) -> int:
    """Entry point for `fal-persona logs ...`."""
    try:
        if args.logs_command in ("on", "off"):
            _switch(args)
            return 0
        with TranscriptStore(enabled=False) as store:
            ACTIONS[args.logs_command](store, args)
    except (TranscriptError, userconfig.UserConfigError) as exc:
        raise CliError(str(exc)) from exc
    except BrokenPipeError:
        # `logs export | head`: the reader left, which is not an error. Point stdout at devnull
        # so the interpreter's final flush does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    return 0
