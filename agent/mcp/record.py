"""The MCP server's transcript: a call's rows recorded after its reply, at most ms later.

Every call of `fal-persona mcp` is recorded as a chat's are (`agent.core.turnlog.TurnLog`
over the store's `prepare`/`write`), with the same rows, redaction and encoding. What differs
is when. A chat commits before it shows what it recorded; an MCP reply shows the client
nothing of the transcript, so neither the redaction and encoding (`prepare`) nor the commit
need delay it. `DeferredTranscript.prepare` only notes the row (and the time it was recorded);
`COMMIT_DELAY_S` after the first row of a batch arrived (a timer on the caller's event loop:
the call itself only appends), a thread prepares and commits the batch. So a reply goes out
first, a burst of calls shares one commit, and the work runs while the loop waits on the
network or the next request. The data a call records is its own (the guard builds each row's
dict for the row, from copies), and nothing changes it once recorded, so preparing it later
stores what preparing it at once would have; a row's time is the time it was recorded.

What that costs: a `kill -9` within `COMMIT_DELAY_S` of a read-only call can lose that call's
rows (the store's own durability holds once they are committed). Rows of calls that spend,
destroy or upload, and approvals, are committed before the call goes on, as in a chat. A clean end (stdin closed, SIGTERM,
ctrl+c) loses nothing: `close()` commits what waits before the transcript is closed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.transcript.sql import Row
from tools.registry import GUARDED_TOOLS

log = logging.getLogger(__name__)

COMMIT_DELAY_S = 0.02
FLUSH_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Pending:
    """A row as recorded, to be prepared (validated, redacted, encoded) by the committing thread."""

    session_id: str
    kind: str
    data: Mapping[str, Any]
    user: str | None
    persona: str | None
    duration_s: float | None
    ref: str | None
    ts: float


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
        self._rows: list[Row | Pending] = []
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
                ref: str | None = None) -> Pending | None:
        """The row, noted for the committing thread to prepare; None when logging is off."""
        if not self.enabled:
            return None
        return Pending(session_id, kind, data, user, persona, duration_s, ref, time.time())

    def write(self, rows: Sequence[Row | Pending]) -> list[int]:
        """Queue `rows` for a commit at most `delay_s` from now; returns at once (no ids).

        Rows about money or undoing work (an approval, and the call and result rows of a tool
        that spends, destroys or sends a file out) are committed before this returns, as a
        chat commits them: those are never in the window a `kill -9` could lose."""
        if not rows:
            return []
        if any(_lasting(row) for row in rows):
            with self._cond:
                self._rows.extend(rows)
            self.flush()
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
        """One row, prepared and committed with the next batch."""
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
            left: list[Row | Pending]
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

    def _prepared(self, row: Row | Pending) -> Row | None:
        if not isinstance(row, Pending):
            return row
        done: Row | None = self.store.prepare(row.session_id, row.kind, row.data, user=row.user,
                                              persona=row.persona, duration_s=row.duration_s, ref=row.ref)
        # Row is (session_id, ts, kind, ...): the time it was recorded, not prepared.
        return None if done is None else (done[0], row.ts, *done[2:])

    def _commit(self, rows: list[Row | Pending]) -> None:
        ready: list[Row] = []
        for row in rows:
            try:
                prepared = self._prepared(row)
            except Exception:  # one bad row must not cost the others theirs
                self.failures += 1
                log.warning("mcp: a transcript row could not be prepared", exc_info=True)
                continue
            if prepared is not None:
                ready.append(prepared)
        if not ready:
            return
        try:
            self.store.write(ready)
        except Exception:  # the replies went out; the log says what was lost
            self.failures += 1
            log.warning("mcp: %d transcript row(s) could not be committed", len(ready), exc_info=True)


def _lasting(row: Row | Pending) -> bool:
    """A row that must be committed before the call goes on (see `DeferredTranscript.write`)."""
    if not isinstance(row, Pending):
        return True  # already prepared by someone else: commit it as they would
    if row.kind == "approval":
        return True
    return row.kind in ("tool_call", "tool_result", "tool_error") and str(row.data.get("name")) in GUARDED_TOOLS
