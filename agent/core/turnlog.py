"""Where one turn's events go: the UI's queue and the transcript.

`TurnLog` is handed to the middleware and the callback handler, so every part of a turn
emits events and records transcript rows the same way.

Rows are redacted and encoded at once (`TranscriptStore.prepare`), then committed in groups:
the runner calls `settle()` before it yields each event, so whatever the UI shows was
committed first and a `kill -9` loses nothing already shown; a row no event follows (a model
request, while the model thinks) is committed by a timer at most `COMMIT_DELAY_S` later. A
commit costs more than the rows in it, so this makes two or three rows share each one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.redact import StreamRedactor, redact_text

__all__ = ["COMMIT_DELAY_S", "TurnLog", "redacted_event"]


COMMIT_DELAY_S = 0.01


class TurnLog:
    """Emits events to a queue and records transcript rows for one session.

    A transcript failure never breaks a turn: it is reported once as an ErrorEvent and
    recording stops for the rest of the turn.
    """

    def __init__(self, transcript: Any, session_id: str, user: str, persona: str) -> None:
        self.transcript = transcript
        self.session_id = session_id
        self.user = user
        self.persona = persona
        self.queue: asyncio.Queue[Any] | None = None
        self._broken = False
        # A store without prepare/write (a test double, say) gets each row written at once.
        self._batched = hasattr(transcript, "prepare") and hasattr(transcript, "write")
        self._rows: list[Any] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream = StreamRedactor()
        self.turn = 0
        """Counts the turns (and slash commands) started, for what holds only within one."""

    def start(self) -> asyncio.Queue[Any]:
        """A fresh queue for a new turn."""
        self.queue = asyncio.Queue()
        self.turn += 1
        self._broken = False
        self._stream = StreamRedactor()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        return self.queue

    def emit(self, event: Any) -> None:
        """Hand an event to whoever consumes the turn (dropped when nobody does), redacted:
        no UI ever holds a secret. Streamed tokens are released up to a word boundary, so a
        key split over two tokens is masked too; any other event releases what was held."""
        if self.queue is None:
            return
        from agent.core.events import Token

        if isinstance(event, Token):
            shown = self._stream.feed(event.text)
            if shown:
                self.queue.put_nowait(Token(shown))
            return
        held = self._stream.flush()
        if held:
            self.queue.put_nowait(Token(held))
        self.queue.put_nowait(redacted_event(event))

    def record(self, kind: str, data: dict[str, Any], duration_s: float | None = None) -> None:
        """Record one transcript row: redacted now, committed before the next event is shown."""
        if self.transcript is None or self._broken:
            return
        try:
            if not self._batched:
                self.transcript.record(self.session_id, kind, data, user=self.user,
                                       persona=self.persona, duration_s=duration_s)
                return
            row = self.transcript.prepare(self.session_id, kind, data, user=self.user,
                                          persona=self.persona, duration_s=duration_s)
        except Exception as exc:  # a full disk must not end the conversation
            self.emit(self._failed(exc))
            return
        if row is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or loop is not self._loop:
            # Not on the turn's loop (a worker thread, say): nothing there will settle this
            # row, so commit it alone now. It may get an id ahead of rows still grouped.
            failure = self._write([row])
            if failure is not None:
                self.emit(failure)
            return
        self._rows.append(row)
        if self._timer is None:
            self._timer = loop.call_later(COMMIT_DELAY_S, self._commit_soon)

    def settle(self) -> Any:
        """Commit every row recorded so far; an ErrorEvent if that failed, else None."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._rows:
            return None
        rows, self._rows = self._rows, []
        return self._write(rows)

    def _write(self, rows: list[Any]) -> Any:
        """Commit `rows`; an ErrorEvent the first time that fails, else None."""
        try:
            self.transcript.write(rows)
        except Exception as exc:  # reported as an event, the turn goes on
            return None if self._broken else self._failed(exc)
        return None

    def _commit_soon(self) -> None:
        self._timer = None
        failure = self.settle()
        if failure is not None:
            self.emit(failure)

    def _failed(self, exc: BaseException) -> Any:
        """Stop recording for this turn; the ErrorEvent that says so."""
        from agent.core.events import ErrorEvent

        self._broken = True
        self._rows.clear()
        return ErrorEvent(f"transcript write failed, not logging this turn: {redact_text(str(exc))}",
                          kind="transcript")


def redacted_event(event: Any) -> Any:
    """`event` with every text and value it carries redacted (the same event when clean)."""
    import dataclasses
    import json

    from agent.redact import current
    from tools.outcome import jsonable

    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        return event
    red = current()
    changes = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if callable(getattr(value, "model_dump", None)):  # a pydantic artifact: as its JSON
            value = jsonable(value)
        before = value
        if isinstance(value, str):
            clean: Any = red.text(value)
        elif isinstance(value, (dict, list, tuple)):
            try:  # the cheap check first: most artifacts hold nothing to mask
                if red.clean_json(json.dumps(value, ensure_ascii=False)):
                    continue
            except (TypeError, ValueError):
                pass
            clean = red(value)
        else:
            continue
        if clean != before:
            changes[f.name] = clean
    return dataclasses.replace(event, **changes) if changes else event
