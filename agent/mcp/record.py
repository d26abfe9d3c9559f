"""The MCP server's transcript: rows prepared during the call, committed after the reply.

Every call of `fal-persona mcp` is recorded as a chat's are (`agent.core.turnlog.TurnLog`
over the store's `prepare`/`write`): each row is validated, redacted and encoded while the
call runs (a snapshot: nothing that changes later reaches it). What differs is the commit. A
chat commits before it shows what it recorded; an MCP reply shows the client nothing of the
transcript, so the commit, the part that waits on SQLite, need not delay it. `DeferredTranscript`
gathers the rows and, `COMMIT_DELAY_S` after the first of a batch arrived (a timer on the
caller's event loop: the call itself only appends), hands the batch to a thread that commits
it. So a reply goes out first, a burst of calls shares one commit, and SQLite's work (which
releases the GIL) runs beside the loop instead of on it.

What that costs: a `kill -9` within `COMMIT_DELAY_S` of a call can lose that call's rows (the
store's own durability holds once they are committed). A clean end (stdin closed, SIGTERM,
ctrl+c) loses nothing: `close()` commits what waits before the transcript is closed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from agent.transcript.sql import Row

log = logging.getLogger(__name__)

COMMIT_DELAY_S = 0.02
FLUSH_TIMEOUT_S = 10.0


class DeferredTranscript:
    """A `TranscriptStore` whose `write` returns at once and commits in a background thread.

    It has the store's writing seam (`new_session`, `prepare`, `write`, `record`), so a
    `TurnLog` batches into it as into the store. `flush()` waits (bounded) until every row
    handed over is committed; `close()` flushes and ends the thread (the store stays open:
    its owner closes it). A failed commit is logged and counted in `failures`.
    """

    def __init__(self, store: Any, delay_s: float = COMMIT_DELAY_S) -> None:
        self.store = store
        self.delay_s = delay_s
        self.failures = 0
        self._rows: list[Row] = []
        self._due = False  # the gathered rows are to be committed now
        self._timer = False  # a hand-off is scheduled on some loop
        self._writing = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether the store records at all (`--no-log`, `logs off`)."""
        return bool(getattr(self.store, "enabled", True))

    # -- the store's writing seam -------------------------------------------------------------
    def new_session(self, user: str, persona: str, source: str = "tui") -> str:
        """A new session of the store (its row goes with the first commit that follows)."""
        return str(self.store.new_session(user, persona, source=source))

    def prepare(self, session_id: str, kind: str, data: Mapping[str, Any], *, user: str | None,
                persona: str | None, duration_s: float | None = None,
                ref: str | None = None) -> Row | None:
        """The store's `prepare`: validated, redacted and encoded now, on the caller's thread."""
        row: Row | None = self.store.prepare(session_id, kind, data, user=user, persona=persona,
                                             duration_s=duration_s, ref=ref)
        return row

    def write(self, rows: list[Row]) -> list[int]:
        """Queue `rows` for a commit at most `delay_s` from now; returns at once (no ids)."""
        if not rows:
            return []
        with self._cond:
            if self._closed:  # nothing would commit them later: now
                self._commit(list(rows))
                return []
            self._rows.extend(rows)
            if self._timer or self._due:
                return []  # they join the batch already on its way
            self._timer = True
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:  # a plain thread: no timer to lean on, hand over now
            self._hand_over()
        else:
            loop.call_later(self.delay_s, self._hand_over)
        return []

    def record(self, session_id: str, kind: str, data: Mapping[str, Any], *, user: str | None,
               persona: str | None, duration_s: float | None = None, ref: str | None = None) -> None:
        """One row, prepared now and committed with the next batch."""
        row = self.prepare(session_id, kind, data, user=user, persona=persona,
                           duration_s=duration_s, ref=ref)
        if row is not None:
            self.write([row])

    # -- committing -------------------------------------------------------------------------
    def pending(self) -> int:
        """Rows handed over and not committed yet (a batch being committed counts as one)."""
        with self._cond:
            return len(self._rows) + (1 if self._writing else 0)

    def _hand_over(self) -> None:
        """The batch is due: wake the committing thread (started on first use)."""
        with self._cond:
            self._timer = False
            if not self._rows:
                return
            self._due = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fal-persona-mcp-transcript",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Commit everything handed over so far; False when that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        self._hand_over()
        with self._cond:
            while (self._rows or self._writing) and self._thread is not None and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return not self._rows and not self._writing

    def close(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Flush, then end the thread (idempotent); later writes commit at once."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
            left, self._rows = self._rows, []
        if thread is not None:
            thread.join(timeout)
        if left:  # the thread did not take them in time: the last chance is now
            self._commit(left)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._due and self._rows) and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                rows, self._rows, self._due = self._rows, [], False
                self._writing = True
            try:
                self._commit(rows)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def _commit(self, rows: list[Row]) -> None:
        try:
            self.store.write(rows)
        except Exception:  # noqa: BLE001 - the replies went out; the log says what was lost
            self.failures += 1
            log.warning("mcp: %d transcript row(s) could not be committed", len(rows), exc_info=True)
