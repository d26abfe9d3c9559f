"""Named, ordered schema migrations for the transcript database.

Each migration is a function registered with `@migration`; its name is recorded in
`_migrations` once applied, so it runs exactly once per database. Never edit or reorder a
shipped migration: add a new one. Each runs in its own `BEGIN IMMEDIATE` transaction, so two
processes opening a fresh database at the same moment cannot both apply it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []

APPEND_ONLY = "transcript is append-only"


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next migration, under its function name."""
    if any(name == fn.__name__ for name, _ in MIGRATIONS):
        raise ValueError(f"duplicate migration name {fn.__name__}")
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_sessions_and_events(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            user TEXT,
            persona TEXT,
            source TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            user TEXT,
            persona TEXT,
            duration_s REAL,
            ref TEXT,
            data TEXT NOT NULL CHECK (json_valid(data))
        )"""
    )
    db.execute("CREATE INDEX events_by_session ON events (session_id, id)")
    db.execute("CREATE INDEX events_by_ref ON events (ref) WHERE ref IS NOT NULL")


@migration
def m002_events_fts(db: sqlite3.Connection) -> None:
    # The indexed text (kind plus every string/number in data) is built by the writer, which
    # sets rowid = events.id so a match joins straight back to its event. (Since m004 the
    # writer indexes in deferred batches.)
    db.execute("CREATE VIRTUAL TABLE events_fts USING fts5 (text, tokenize = 'unicode61')")


@migration
def m003_append_only(db: sqlite3.Connection) -> None:
    for table in ("events", "sessions"):
        for op in ("UPDATE", "DELETE"):
            db.execute(
                f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
                BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
            )


@migration
def m004_deferred_fts_index(db: sqlite3.Connection) -> None:
    # Events are indexed for search in batches after they are committed (see
    # agent/transcript/sql.py); the trigger notes each new event until then, whoever writes it.
    # Events before this migration were indexed as they were written.
    db.execute("CREATE TABLE fts_pending (id INTEGER PRIMARY KEY)")
    db.execute(
        """CREATE TRIGGER events_fts_pending AFTER INSERT ON events
        BEGIN INSERT INTO fts_pending (id) VALUES (new.id); END"""
    )


@migration
def m005_fts_watermark(db: sqlite3.Connection) -> None:
    # Ids only grow (AUTOINCREMENT) and indexing takes every event there is, under the write
    # lock, so "indexed" is exactly "id <= last_id": one number replaces m004's note per event
    # (a page written by every commit). Events noted in fts_pending are the unindexed suffix.
    db.execute("CREATE TABLE fts_watermark (one INTEGER PRIMARY KEY CHECK (one = 1), "
               "last_id INTEGER NOT NULL)")
    db.execute(
        """INSERT INTO fts_watermark (one, last_id) VALUES (1, coalesce(
            (SELECT min(id) - 1 FROM fts_pending), (SELECT max(id) FROM events), 0))"""
    )
    db.execute("DROP TRIGGER events_fts_pending")
    db.execute("DROP TABLE fts_pending")


def applied(db: sqlite3.Connection) -> set[str]:
    """Names of the migrations already applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    return {row[0] for row in db.execute("SELECT name FROM _migrations")}


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every pending migration (the connection must be in autocommit mode)."""
    done = applied(db)
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the write lock.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                db.execute("COMMIT")
                continue
            fn(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        ran.append(name)
    return ran
