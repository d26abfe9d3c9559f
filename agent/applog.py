"""The application's log: the standard `logging` module, configured once at start-up.

Every module logs to ``logging.getLogger(__name__)``; nothing is configured at import time.
:func:`configure` (called by `agent.cli.main`) attaches, to the root logger:

- a rotating file, ``<data dir>/logs/fal-persona.log`` (5 MiB, 3 old files kept), at the
  level of ``--log-level``, else ``FAL_PERSONA_LOG_LEVEL``, else INFO;
- for commands other than the TUI, stderr: warnings and errors for one-shot commands (`ask`,
  `logs`, ...), the chosen level for servers (`sandbox`, `webhooks serve`, `web`). The TUI
  writes nothing to the terminal: Textual owns it.

Both pass through :class:`RedactingFilter`, the project's redactor (`agent.redact`), so a key
in a message, an argument or a traceback is masked before it is written anywhere.

Several processes may share the file (`webhooks serve --workers`, the web command's tabs): each
line carries its pid, and appends do not interleave, but the process that rotates the file does
not tell the others, which keep writing to the renamed file until they restart.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Literal, TextIO

from agent import locations
from agent.redact import redact_text

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Console = Literal["none", "warnings", "level"]
"""What stderr gets: nothing (the TUI), warnings and up (one-shot commands), the level (servers)."""
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(threadName)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that talk a lot below INFO: kept at INFO unless DEBUG is asked for.
_CHATTY = ("httpcore", "hpack", "markdown_it", "PIL", "openai", "urllib3", "asyncio", "aiohttp")
_MARK = "_fal_persona_handler"


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, traceback and stack before any handler
    formats it (the record is rewritten in place, so every later handler sees the masked text)."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler, which reports it
            return True
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (tests and redirections swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


def level_number(level: str) -> int:
    """`"debug"` -> logging.DEBUG; ValueError for a name that is not a level."""
    name = level.strip().upper()
    if name not in LEVELS:
        raise ValueError(f"not a log level: {level!r} (one of {', '.join(LEVELS)})")
    return int(logging.getLevelName(name))


def configure(level: str = "INFO", *, console: Console = "warnings", path: Path | None = None) -> Path | None:
    """Set up the log file (and stderr) for this process; idempotent. Returns the file's path
    (None when it cannot be written: then a warning goes to stderr, if stderr is on)."""
    number = level_number(level)
    reset()
    handlers: list[logging.Handler] = []
    problem = None
    try:
        path = path or locations.log_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True)
    except OSError as exc:  # an unwritable data dir: say so (below) and log to stderr only
        problem = f"cannot write the log file under {path or 'the data dir'}: {exc.strerror or exc}"
    else:
        file_handler.setLevel(number)
        file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handlers.append(file_handler)
    if console != "none":
        stderr = _Stderr()
        stderr.setLevel(max(number, logging.WARNING) if console == "warnings" else number)
        stderr.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        handlers.append(stderr)
    if not handlers:  # never logging's last resort, which writes to stderr (the TUI's screen)
        handlers.append(logging.NullHandler())
    redacting = RedactingFilter()
    root = logging.getLogger()
    for handler in handlers:
        handler.addFilter(redacting)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(number)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(number, logging.INFO))
    log = logging.getLogger(__name__)
    if problem:
        log.warning("%s", problem)
        return None
    log.debug("logging to %s at %s", path, logging.getLevelName(number))
    return path


def reset() -> None:
    """Detach and close the handlers :func:`configure` attached (tests; a second configure)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
