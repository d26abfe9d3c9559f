"""The transcript: every prompt, model call, tool call and approval, in SQLite.

Properties the rest of the app relies on:

* append-only: triggers make any UPDATE or DELETE of a session or event fail;
* durable: `record()` returns only once its row is committed (WAL mode), so a `kill -9`
  loses nothing it returned for. Callers that record many rows (the runner, through
  agent/core/turnlog.py) `prepare()` each row at once (validated, redacted, a snapshot) and
  `write()` several in one commit, before the UI shows anything they record;
* redacted: secrets (env and `.env` keys, credential shapes) are masked before writing;
* searchable: an FTS5 index over each event's kind and text (a model_request indexes only its
  model); user queries are quoted, so no input can be an FTS syntax error. Indexing lags
  the commit and is done in batches (agent/transcript/sql.py); every search first indexes
  whatever waits, so it sees every committed event;
* thread-safe: one connection, opened on first use, guarded by a lock.

Logging is off when `enabled=False` (e.g. `--no-log`), when `FAL_PERSONA_NO_LOG` is set, or
when the persistent switch `[transcript] enabled = false` is in the config file
(`fal-persona logs off`). Reading works either way.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as _secrets
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent import locations, userconfig
from agent.transcript.migrations import migrate
from agent.transcript.render import iso, to_jsonl, to_markdown
from agent.transcript.sql import Row, SessionRow, encode_data, index_pending, write_rows
from tools.errors import AppError

if TYPE_CHECKING:  # imported where used: redaction loads pydantic (~0.1 s), which reading a
    from agent.redact import Redactor  # transcript (a reopened chat's first paint) does without

log = logging.getLogger(__name__)

KINDS = frozenset({
    "user_prompt", "model_request", "model_response", "tool_call", "tool_progress",
    "tool_result", "tool_error", "approval", "answer", "error", "trigger_event",
    "trigger_action", "schedule_run", "persona_switch",
    # Resuming a chat (agent/transcript/replay.py): an approval asked and not yet answered, and
    # a job's outcome learned outside a tool call (a background follower, a webhook).
    "approval_request", "job_state",
})

_TRUE = {"1", "true", "yes", "on"}
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
"""Around each match in a search hit's `marked` snippet."""
_EVENT_COLS = "id, session_id, ts, kind, user, persona, duration_s, ref, data"
# Index for search once this many events wait (and before any search, and on close).
FTS_BATCH = 64


class TranscriptError(AppError):
    """The transcript cannot be written or read, or a query/session id is not usable."""


def _env_no_log() -> bool:
    return os.environ.get("FAL_PERSONA_NO_LOG", "").strip().lower() in _TRUE


def _settings_secrets() -> tuple[str, ...]:
    """Keys read from `.env` by Settings never reach os.environ; collect them too."""
    from agent.redact import settings_secrets

    try:
        from agent.settings import Settings

        return settings_secrets(Settings())
    except Exception:  # a bad unrelated setting must not stop redaction of the others
        log.warning("transcript: the settings do not validate, so only the environment's keys "
                    "are redacted by name", exc_info=True)
        return ()


def _fts_query(query: str) -> str:
    """Quote every term, so user input is always a valid FTS5 query; `term*` keeps a prefix."""
    terms = query.split()
    if not terms:
        raise TranscriptError("empty search query")
    out = []
    for term in terms:
        prefix = len(term) > 1 and term.endswith("*")
        term = term.rstrip("*") if prefix else term
        out.append('"' + term.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(out)


def _event_row(row: tuple[Any, ...]) -> dict[str, Any]:
    eid, sid, ts, kind, user, persona, duration, ref, data = row[:9]
    return {"id": eid, "session_id": sid, "ts": iso(ts), "kind": kind, "user": user,
            "persona": persona, "duration_s": duration, "ref": ref, "data": json.loads(data)}


class TranscriptStore:
    """Append-only, searchable record of sessions and their events (see module docstring).

    `path` defaults to `locations.transcript_db()`; `secrets` adds literal values to redact
    (by default the environment's and `.env`'s FAL_KEY and OPENAI_API_KEY).
    """

    def __init__(self, path: Path | str | None = None, enabled: bool = True, *,
                 secrets: tuple[str, ...] | None = None) -> None:
        self.path = Path(path) if path is not None else locations.transcript_db()
        self.enabled = bool(enabled) and not _env_no_log() and userconfig.transcript_enabled()
        self._secrets = tuple(secrets) if secrets is not None else _settings_secrets()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._known_sessions: set[str] = set()
        self._new_sessions: list[SessionRow] = []
        self._unindexed = 0

    # -- connection -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=10.0)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL: a commit survives the process dying (not a power cut), and
                # skips the fsync that would make every record cost milliseconds.
                conn.execute("PRAGMA synchronous=NORMAL")
                migrate(conn)
            except (sqlite3.Error, OSError) as exc:
                if conn is not None:
                    conn.close()
                raise TranscriptError(f"cannot open transcript {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Write what waits, index it for search, close the connection (reopened on next use)."""
        with self._lock:
            try:
                if self._new_sessions:
                    self.write([])
                if self._conn is not None and self._unindexed:
                    # Indexing can wait for the next search: do not hang an exit on a busy lock.
                    self._conn.execute("PRAGMA busy_timeout = 200")
                    index_pending(self._conn)
            except (sqlite3.Error, TranscriptError) as exc:  # closing must not fail
                log.warning("transcript: indexing on close failed (the next open or search "
                            "indexes what is left): %s", exc)
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> TranscriptStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _redactor(self) -> Redactor:
        from agent.redact import Redactor, env_secrets

        return Redactor.for_secrets(env_secrets() + self._secrets)

    # -- writing ----------------------------------------------------------------------------
    def new_session(self, user: str, persona: str, source: str = "tui") -> str:
        """Start a session and return its id (also when logging is off, so callers need no branch).

        Its row is written with the session's first event (or by a read or `close()` first):
        a session nothing happened in is not worth a commit of its own.
        """
        sid = time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + _secrets.token_hex(3)
        if self.enabled:
            redact = self._redactor()
            with self._lock:
                self._known_sessions.add(sid)
                self._new_sessions.append((sid, time.time(), redact(user), redact(persona), source))
        return sid

    def forget_session(self, session_id: str) -> bool:
        """Drop a session started here that nothing happened in yet: no row is ever written
        for it (e.g. `fal-persona mcp`'s runner, whose calls log in sessions of their own).
        False when it is not waiting to be written (unknown, or written already)."""
        with self._lock:
            waiting = [s for s in self._new_sessions if s[0] == session_id]
            if not waiting:
                return False
            self._new_sessions = [s for s in self._new_sessions if s[0] != session_id]
            self._known_sessions.discard(session_id)
            return True

    def prepare(self, session_id: str, kind: str, data: Mapping[str, Any], *, user: str | None,
                persona: str | None, duration_s: float | None = None,
                ref: str | None = None) -> Row | None:
        """Validate, redact and encode one event for `write`; None when logging is off.

        The row is a snapshot: later changes to `data` do not reach it, and no secret does.
        """
        if not self.enabled:
            return None
        if kind not in KINDS:
            raise ValueError(f"unknown transcript event kind {kind!r}")
        if not isinstance(session_id, str) or not session_id:
            raise TypeError("transcript session_id must be a non-empty string")
        if not isinstance(data, Mapping):
            raise TypeError(f"transcript data must be a dict, not {type(data).__name__}")
        redact = self._redactor()
        return (session_id, time.time(), kind, redact(user), redact(persona),
                None if duration_s is None else float(duration_s),
                None if ref is None else redact(str(ref)), encode_data(data, redact))

    def write(self, rows: list[Row]) -> list[int]:
        """Append prepared rows in one committed transaction; their ids, in order."""
        with self._lock:
            sessions, self._new_sessions = self._new_sessions, []
            for row in rows:
                if row[0] not in self._known_sessions:  # e.g. a webhook's own session id
                    sessions.append((row[0], row[1], row[3], row[4], "unknown"))
                    self._known_sessions.add(row[0])
            try:
                ids = write_rows(self._db(), sessions, rows)
            except (sqlite3.Error, TranscriptError) as exc:
                self._new_sessions[:0] = sessions  # INSERT OR IGNORE: retrying them is harmless
                if isinstance(exc, TranscriptError):
                    raise
                raise TranscriptError(f"cannot write transcript: {exc}") from exc
            self._unindexed += len(ids)
            if self._unindexed >= FTS_BATCH:
                try:
                    self._index()
                except (sqlite3.Error, TranscriptError) as exc:
                    # The rows are committed; the next search or close indexes them.
                    log.warning("transcript: indexing a batch failed: %s", exc)
        return ids

    def record(self, session_id: str, kind: str, data: Mapping[str, Any], *, user: str | None,
               persona: str | None, duration_s: float | None = None,
               ref: str | None = None) -> int | None:
        """Append one event, committed before returning; its id, or None when logging is off."""
        row = self.prepare(session_id, kind, data, user=user, persona=persona,
                           duration_s=duration_s, ref=ref)
        return None if row is None else self.write([row])[0]

    def _index(self) -> None:
        """Index for search every event waiting for it (ours and any other writer's)."""
        index_pending(self._db())
        self._unindexed = 0

    # -- reading ----------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...] = (), *,
               index: bool = False) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                if self._new_sessions:
                    self.write([])
                if index:
                    self._index()
                return self._db().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise TranscriptError(f"cannot read transcript: {exc}") from exc

    def list_sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent sessions first, with their event counts."""
        rows = self._query(
            "SELECT s.id, s.started_at, s.user, s.persona, s.source, "
            "(SELECT count(*) FROM events e WHERE e.session_id = s.id), "
            "(SELECT max(ts) FROM events e WHERE e.session_id = s.id) "
            "FROM sessions s ORDER BY s.started_at DESC, s.rowid DESC LIMIT ?", (max(0, limit),))
        return [{"id": r[0], "started_at": iso(r[1]), "user": r[2], "persona": r[3],
                 "source": r[4], "events": r[5], "last_ts": iso(r[6])} for r in rows]

    def conversations(self, limit: int = 200) -> list[dict[str, Any]]:
        """Sessions someone talked in (at least one prompt), the most recently active first:
        id, title (the first prompt), persona (the latest), started_at, last_ts, events,
        spent_usd (what its submits cost) and source."""
        rows = self._query(
            "SELECT s.id, s.started_at, s.source, "
            "(SELECT json_extract(e.data, '$.text') FROM events e WHERE e.session_id = s.id "
            " AND e.kind = 'user_prompt' ORDER BY e.id LIMIT 1), "
            "(SELECT e.persona FROM events e WHERE e.session_id = s.id ORDER BY e.id DESC LIMIT 1), "
            "(SELECT max(e.ts) FROM events e WHERE e.session_id = s.id), "
            "(SELECT count(*) FROM events e WHERE e.session_id = s.id), "
            "(SELECT total(json_extract(e.data, '$.cost_usd')) FROM events e WHERE e.session_id = s.id "
            " AND e.kind = 'tool_result') "
            "FROM sessions s WHERE EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id "
            " AND e.kind = 'user_prompt') "
            "ORDER BY 6 DESC, s.rowid DESC LIMIT ?", (max(0, limit),))
        return [{"id": r[0], "started_at": iso(r[1]), "source": r[2],
                 "title": " ".join(str(r[3] or "").split())[:200], "persona": r[4],
                 "last_ts": iso(r[5]), "events": r[6], "spent_usd": round(float(r[7] or 0.0), 6)}
                for r in rows]

    def latest_conversation(self) -> str | None:
        """The id of the most recently active session with a prompt in it, or None."""
        rows = self.conversations(1)
        return rows[0]["id"] if rows else None

    def resolve_session(self, prefix: str) -> str:
        """The one session id that equals or starts with `prefix`."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._query(
            "SELECT id FROM sessions WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 3",
            (prefix, pattern))
        ids = [r[0] for r in rows]
        if prefix in ids:
            return prefix
        if not ids or not prefix:
            raise TranscriptError(f"no session {prefix!r}")
        if len(ids) > 1:
            raise TranscriptError(f"session prefix {prefix!r} is ambiguous ({', '.join(ids[:2])}, ...)")
        return ids[0]

    def events(self, session_id: str) -> list[dict[str, Any]]:
        """A session's events, in order."""
        rows = self._query(f"SELECT {_EVENT_COLS} FROM events WHERE session_id = ? ORDER BY id",
                           (session_id,))
        return [_event_row(r) for r in rows]

    def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        """Events matching every word of `query` (`word*` for a prefix), newest first."""
        rows = self._query(
            f"SELECT {', '.join('e.' + c.strip() for c in _EVENT_COLS.split(','))}, "
            "snippet(events_fts, 0, '[', ']', '…', 10), "
            f"snippet(events_fts, 0, char({ord(MARK_OPEN)}), char({ord(MARK_CLOSE)}), '…', 10) "
            "FROM events_fts JOIN events e ON e.id = events_fts.rowid "
            "WHERE events_fts MATCH ? ORDER BY e.id DESC LIMIT ?",
            (_fts_query(query), max(0, limit)), index=True)
        # `snippet` brackets each match for a terminal; `marked` wraps it in MARK_OPEN/MARK_CLOSE,
        # control characters that ordinary text does not hold (brackets it does), for a UI to
        # highlight without ambiguity.
        return [{**_event_row(r), "snippet": r[9].replace("\n", " "), "marked": r[10].replace("\n", " ")}
                for r in rows]

    def export(self, session_id: str | None = None,
               fmt: Literal["jsonl", "md"] = "jsonl") -> str:
        """One session (or all, oldest first) as JSON lines or Markdown."""
        if fmt not in ("jsonl", "md"):
            raise TranscriptError(f"unknown export format {fmt!r} (use jsonl or md)")
        if session_id is None:
            events = [_event_row(r) for r in
                      self._query(f"SELECT {_EVENT_COLS} FROM events ORDER BY id")]
            sessions = self._session_rows(None)
        else:
            sid = self.resolve_session(session_id)
            events = self.events(sid)
            sessions = self._session_rows(sid)
        return to_jsonl(events) if fmt == "jsonl" else to_markdown(sessions, events)

    def _session_rows(self, sid: str | None) -> list[dict[str, Any]]:
        """One session's row, or every session oldest first."""
        sql = "SELECT id, started_at, user, persona, source FROM sessions"
        rows = (self._query(sql + " WHERE id = ?", (sid,)) if sid is not None
                else self._query(sql + " ORDER BY started_at, rowid"))
        return [{"id": r[0], "started_at": iso(r[1]), "user": r[2], "persona": r[3],
                 "source": r[4]} for r in rows]
