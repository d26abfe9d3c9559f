"""The transcript's write path: row encoding, one commit per batch, the deferred FTS index.

Why the full-text index lags: an FTS5 insert makes its commit write a new index segment (and
now and then merge segments), which costs several times the row itself. So a commit holds only
the event, and `index_pending` later indexes, in one transaction, every event past
`fts_watermark.last_id` (migration m005) and moves the watermark. Search calls it first,
from whichever process searches, so a search always sees every committed event, including
those a killed process left unindexed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from agent.transcript.render import encode, search_text

if TYPE_CHECKING:  # a type only: redaction loads pydantic, which reading a transcript does without
    from agent.redact import Redactor

# (session_id, ts, kind, user, persona, duration_s, ref, data-json)
Row = tuple[str, float, str, str | None, str | None, float | None, str | None, str]
# (id, started_at, user, persona, source)
SessionRow = tuple[str, float, str | None, str | None, str]

# 8 parameters a row: under the 999 a statement may bind in SQLite before 3.32.
MAX_ROWS_PER_STATEMENT = 120


@lru_cache(maxsize=64)
def _INSERT_EVENTS_MANY(n: int) -> str:  # upper case: reads as the SQL constant it builds
    return ("INSERT INTO events (session_id, ts, kind, user, persona, duration_s, ref, data) VALUES "
            + ",".join(["(?,?,?,?,?,?,?,?)"] * n))


@lru_cache(maxsize=8)
def _INSERT_SESSION_MANY(n: int) -> str:
    return ("INSERT OR IGNORE INTO sessions (id, started_at, user, persona, source) VALUES "
            + ",".join(["(?,?,?,?,?)"] * n))


def searchable(kind: str, data: Any) -> Any:
    """The part of an event's (redacted) data that full-text search indexes.

    A model_request resends the conversation, every part of which is indexed in its own row
    (user_prompt, model_response, tool_call, tool_result/tool_error), plus the persona's system
    prompt; indexing it again would make it the costliest row to index and flood searches with
    duplicate hits, so only its model is indexed. Its full body is still stored.
    """
    if kind == "model_request" and isinstance(data, dict):
        return {"model": data.get("model")}
    return data


def encode_data(data: Mapping[str, Any], redact: Redactor) -> str:
    """The JSON stored for an event's data, redacted.

    Fast path: most rows hold no secret, so one C-speed encode and a substring pre-check
    (`Redactor.clean_json`) replace the walk that copies every value. Anything else (objects,
    NaN, odd keys, a possible secret) takes the full walk, which gives the same text in the
    plain case.
    """
    try:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        body = None
    if body is None or not redact.clean_json(body):
        body, _ = encode(redact(dict(data)), redact)
    return body


def write_rows(db: sqlite3.Connection, sessions: Sequence[SessionRow],
               rows: Sequence[Row]) -> list[int]:
    """Insert sessions, then events in one committed transaction; the events' ids, in order.

    The connection is in autocommit mode. A single multi-row INSERT is its own transaction,
    so the usual batch (a few rows) costs one statement and one commit; AUTOINCREMENT under
    the write lock numbers its rows consecutively, so the last id gives all of them.
    """
    if sessions:  # a session row alone harms nothing if the events then fail: it is retried
        db.execute(_INSERT_SESSION_MANY(len(sessions)), [v for s in sessions for v in s])
    if not rows:
        return []
    if len(rows) <= MAX_ROWS_PER_STATEMENT:
        return _insert(db, rows)
    db.execute("BEGIN")
    try:
        ids = []
        for start in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
            ids += _insert(db, rows[start:start + MAX_ROWS_PER_STATEMENT])
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return ids


def _insert(db: sqlite3.Connection, rows: Sequence[Row]) -> list[int]:
    """One INSERT statement for `rows`; their ids."""
    last = db.execute(_INSERT_EVENTS_MANY(len(rows)), [v for r in rows for v in r]).lastrowid
    assert last is not None
    return list(range(last - len(rows) + 1, last + 1))


def index_pending(db: sqlite3.Connection) -> int:
    """Index every event past the watermark; how many were indexed."""
    # IMMEDIATE takes the write lock before reading, so two processes cannot index one event
    # twice, and no event can commit below the new watermark meanwhile.
    db.execute("BEGIN IMMEDIATE")
    try:
        got = db.execute("SELECT id, kind, data FROM events WHERE id > "
                         "(SELECT last_id FROM fts_watermark) ORDER BY id").fetchall()
        if got:
            db.executemany("INSERT INTO events_fts (rowid, text) VALUES (?, ?)",
                           [(eid, search_text(kind, searchable(kind, json.loads(data))))
                            for eid, kind, data in got])
            db.execute("UPDATE fts_watermark SET last_id = ?", (got[-1][0],))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return len(got)
