"""Where one turn's events go: the UI's queue and the transcript.

`TurnLog` is handed to the middleware and the callback handler, so every part of a turn
emits events and records transcript rows the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.redact import redact_text


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

    def start(self) -> asyncio.Queue[Any]:
        """A fresh queue for a new turn."""
        self.queue = asyncio.Queue()
        self._broken = False
        return self.queue

    def emit(self, event: Any) -> None:
        """Hand an event to whoever consumes the turn (dropped when nobody does)."""
        if self.queue is not None:
            self.queue.put_nowait(event)

    def record(self, kind: str, data: dict[str, Any], duration_s: float | None = None) -> None:
        """Write one transcript row (committed at once by the store)."""
        if self.transcript is None or self._broken:
            return
        try:
            self.transcript.record(self.session_id, kind, data, user=self.user,
                                   persona=self.persona, duration_s=duration_s)
        except Exception as exc:  # a full disk must not end the conversation
            self._broken = True
            from agent.events import ErrorEvent

            self.emit(ErrorEvent(f"transcript write failed, not logging this turn: {redact_text(str(exc))}",
                                 kind="transcript"))
