"""The webhook inbox: every accepted delivery, stored before it is acknowledged.

SQLite in WAL mode with ``synchronous=FULL``: a commit returns only after the WAL is on disk,
so an event that got its 2xx survives a ``kill -9`` *and* an OS crash or power cut. (NORMAL
would survive ``kill -9`` too but can lose the last commits on power loss; group commit makes
FULL affordable, see ``intake.py``.)

Rows move ``pending -> done``, or ``pending -> failed -> ... -> dead`` when their actions keep
failing; ``next_attempt_at`` says when a failed row is due again. ``submitted_jobs`` maps the
request ids of jobs we submitted to their endpoint, because fal's webhook body has none.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import locations

try:
    import fcntl
except ImportError:  # Windows: fall back to SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]  # the module or None, checked before each use

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    received_at REAL NOT NULL,
    endpoint_id TEXT,
    user_id TEXT,
    status TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    outcome TEXT,
    next_attempt_at REAL NOT NULL,
    updated_at REAL
);
-- Only rows with work left are indexed for the worker: a settled row (most of them, and every
-- row of a listener without rules) costs one b-tree less to store.
DROP INDEX IF EXISTS events_due;
CREATE INDEX IF NOT EXISTS events_open ON events(state, next_attempt_at) WHERE state IN ('pending', 'failed');
CREATE TABLE IF NOT EXISTS rule_runs (
    request_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    done_at REAL NOT NULL,
    PRIMARY KEY (request_id, rule)
);
CREATE TABLE IF NOT EXISTS submitted_jobs (
    request_id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL,
    submitted_at REAL NOT NULL
);
"""

STATES = ("pending", "done", "failed", "dead")
_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (request_id, received_at, endpoint_id, user_id, status, body, "
    "state, outcome, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
)
_COLUMNS = (
    "request_id, received_at, endpoint_id, user_id, status, body, state, attempts, "
    "last_error, outcome, next_attempt_at"
)

_JOINED = ", ".join(
    "COALESCE(s.endpoint_id, e.endpoint_id)" if c == "endpoint_id" else f"e.{c}"
    for c in _COLUMNS.split(", ")
)


@dataclass(frozen=True)
class NewEvent:
    """A verified, validated delivery about to be stored."""

    request_id: str
    received_at: float
    status: str
    body: bytes
    user_id: str | None = None
    endpoint_id: str | None = None


@dataclass(frozen=True)
class EventRow:
    """One stored event and what became of it."""

    request_id: str
    received_at: float
    endpoint_id: str | None
    user_id: str | None
    status: str
    body: bytes
    state: str
    attempts: int
    last_error: str | None
    outcome: str | None
    next_attempt_at: float

    def summary(self) -> dict[str, Any]:
        """The row as JSON-ready data, without the body."""
        return {
            "request_id": self.request_id,
            "status": self.status,
            "endpoint_id": self.endpoint_id,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "outcome": self.outcome,
            "received_at": self.received_at,
            "next_attempt_at": self.next_attempt_at if self.state == "failed" else None,
        }


class Inbox:
    """The SQLite inbox. Thread-safe: one connection behind a lock, opened on first use."""

    def __init__(self, path: Path | str | None = None, *, synchronous: str = "FULL",
                 shared_writers: bool = False) -> None:
        self.path = Path(path) if path is not None else locations.inbox_db()
        self._synchronous = synchronous
        # Several processes storing at once (``webhooks serve --workers N``): queue for the
        # write lock on a flock, which wakes the next writer the moment it is free, instead of
        # SQLite's busy handler, which sleeps 1, 2, 5, 10 ms... and set p99 at ~20 ms.
        self._shared_writers = shared_writers
        self._flock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def synchronous(self) -> str:
        """The SQLite fsync level commits use (FULL or NORMAL)."""
        return self._synchronous

    @property
    def shared_writers(self) -> bool:
        """Whether writers from several processes queue on a file lock (see __init__)."""
        return self._shared_writers

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(SCHEMA)
            if self._shared_writers and fcntl is not None:
                self._flock_fd = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._flock_fd is not None:
                os.close(self._flock_fd)
                self._flock_fd = None

    def add_many(self, events: Iterable[NewEvent], *, settled_as: str | None = None) -> list[bool]:
        """Store events in one transaction; per event, True if new, False if a duplicate.

        ``settled_as`` stores them already done with that outcome: for a listener with no rules
        there is nothing to run, so the action worker need not read and update each row again.
        """
        state, outcome = ("done", settled_as) if settled_as is not None else ("pending", None)
        with self._lock:
            db = self._db()
            results: list[bool] = []
            if self._flock_fd is not None:
                fcntl.flock(self._flock_fd, fcntl.LOCK_EX)  # released below, after COMMIT
            try:
                db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._unflock()
                raise
            try:
                rows = [(ev.request_id, ev.received_at, ev.endpoint_id, ev.user_id, ev.status,
                         ev.body, state, outcome, ev.received_at) for ev in events]
                # One executemany when every row is new (the usual case); if the count says some
                # were duplicates, undo it and go row by row to learn which.
                db.execute("SAVEPOINT add_many")
                before = db.total_changes
                db.executemany(_INSERT_EVENT, rows)
                if db.total_changes - before == len(rows):
                    results = [True] * len(rows)
                    db.execute("RELEASE add_many")
                else:
                    db.execute("ROLLBACK TO add_many")
                    db.execute("RELEASE add_many")
                    for row in rows:
                        results.append(db.execute(_INSERT_EVENT, row).rowcount == 1)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                self._unflock()
            return results

    def _unflock(self) -> None:
        if self._flock_fd is not None:
            fcntl.flock(self._flock_fd, fcntl.LOCK_UN)

    def add(self, event: NewEvent) -> bool:
        """Store one event; False if its request_id is already in the inbox."""
        return self.add_many([event])[0]

    def due(self, now: float, limit: int = 100) -> list[EventRow]:
        """Rows due now (pending, or failed and past their back-off), with their best-known endpoint."""
        with self._lock:
            # submitted_jobs, written when we submitted the job, outranks the URL's endpoint_id.
            rows = self._db().execute(
                f"SELECT {_JOINED} FROM events e LEFT JOIN submitted_jobs s USING (request_id) "
                "WHERE e.state IN ('pending', 'failed') AND e.next_attempt_at <= ? "
                "ORDER BY e.next_attempt_at, e.id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [EventRow(*row) for row in rows]

    def next_due_at(self) -> float | None:
        """When the earliest pending or failed row is due, if any."""
        with self._lock:
            row = self._db().execute(
                "SELECT MIN(next_attempt_at) FROM events WHERE state IN ('pending', 'failed')"
            ).fetchone()
        return row[0] if row else None

    def settle(self, updates: Iterable[tuple[str, str, int, str | None, str | None, float, float]]) -> None:
        """Apply (request_id, state, attempts, last_error, outcome, next_attempt_at, now) in one commit."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "UPDATE events SET state=?, attempts=?, last_error=?, outcome=?, "
                    "next_attempt_at=?, updated_at=? WHERE request_id=?",
                    [(s, a, e, o, n, t, rid) for rid, s, a, e, o, n, t in updates],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def get(self, request_id: str) -> EventRow | None:
        """One event by request id."""
        with self._lock:
            row = self._db().execute(
                f"SELECT {_COLUMNS} FROM events WHERE request_id=?", (request_id,)
            ).fetchone()
        return EventRow(*row) if row else None

    def list(self, limit: int = 50) -> list[EventRow]:
        """The latest events, newest first."""
        with self._lock:
            rows = self._db().execute(
                f"SELECT {_COLUMNS} FROM events ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [EventRow(*row) for row in rows]

    def count(self) -> int:
        """How many events are stored."""
        with self._lock:
            return self._db().execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def mark_rule_done(self, request_id: str, rule: str, now: float) -> None:
        """Remember that one rule's action succeeded for an event, so a retry skips it."""
        with self._lock:
            self._db().execute(
                "INSERT OR IGNORE INTO rule_runs VALUES (?, ?, ?)", (request_id, rule, now)
            )

    def rules_done(self, request_id: str) -> set[str]:
        """The rules whose action already succeeded for an event."""
        with self._lock:
            rows = self._db().execute(
                "SELECT rule FROM rule_runs WHERE request_id=?", (request_id,)
            ).fetchall()
        return {r[0] for r in rows}

    def record_submission(self, request_id: str, endpoint_id: str, submitted_at: float) -> None:
        """Remember which endpoint a job we submitted ran on."""
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO submitted_jobs VALUES (?, ?, ?)",
                (request_id, endpoint_id, submitted_at),
            )

    def endpoint_for(self, request_id: str) -> str | None:
        """The endpoint of a job we submitted, if we recorded it."""
        with self._lock:
            row = self._db().execute(
                "SELECT endpoint_id FROM submitted_jobs WHERE request_id=?", (request_id,)
            ).fetchone()
        return row[0] if row else None
