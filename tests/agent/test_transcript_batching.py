"""The transcript's fast write path: prepared rows, grouped commits, the lagging FTS index."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from pydantic import SecretStr

from agent import locations
from agent.redact import MASK, Redactor
from agent.transcript.migrations import MIGRATIONS, applied
from agent.transcript.render import encode
from agent.transcript.sql import encode_data
from agent.transcript.store import TranscriptStore

WHO = {"user": "alice", "persona": "producer"}
FAL = "keyid-1234:very-secret-value"


@pytest.fixture
def store():
    with TranscriptStore() as s:
        yield s


def raw_rows(sql: str, params: tuple = ()) -> list[tuple]:
    """What another connection (another process) sees committed."""
    db = sqlite3.connect(locations.transcript_db())
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def test_prepared_rows_commit_together_with_consecutive_ids(store):
    sid = store.new_session("alice", "producer")
    rows = [store.prepare(sid, "tool_progress", {"i": i}, **WHO) for i in range(5)]
    ids = store.write(rows)
    assert len(ids) == 5 and ids == list(range(ids[0], ids[0] + 5))
    assert [(e["id"], e["data"]["i"]) for e in store.events(sid)] == list(zip(ids, range(5)))
    # The session row was written with its first events, not on its own.
    assert raw_rows("SELECT id FROM sessions") == [(sid,)]


def test_a_prepared_row_is_a_redacted_snapshot(monkeypatch, store):
    monkeypatch.setenv("FAL_KEY", FAL)
    data = {"args": {"prompt": f"use {FAL}"}, "list": [1]}
    row = store.prepare("s1", "tool_call", data, **WHO)
    data["args"]["prompt"] = "changed later"
    data["list"].append(2)
    store.write([row])
    [event] = store.events("s1")
    assert event["data"] == {"args": {"prompt": f"use {MASK}"}, "list": [1]}


def test_prepare_checks_input_and_is_none_when_off():
    store = TranscriptStore()
    with pytest.raises(ValueError, match="unknown transcript event kind"):
        store.prepare("s", "nope", {}, **WHO)
    with pytest.raises(TypeError, match="must be a dict"):
        store.prepare("s", "answer", "text", **WHO)  # type: ignore[arg-type]  # a wrong type on purpose
    assert TranscriptStore(enabled=False).prepare("s", "answer", {}, **WHO) is None


def test_a_big_batch_spans_statements_and_stays_in_order(store):
    rows = [store.prepare("big", "tool_progress", {"i": i}, **WHO) for i in range(1203)]
    ids = store.write(rows)
    assert ids == list(range(ids[0], ids[0] + 1203))
    assert [e["data"]["i"] for e in store.events("big")] == list(range(1203))


TRICKY = [
    {"text": "plain words, nothing secret", "n": [1, 2.5, None, True], "t": ("a", "b")},
    {"text": f"key {FAL}"},
    {"text": "Bearer\nabcdefghijklmnop"},                 # a newline JSON escapes
    {"text": "authorization:\tKey abc:defghijkl"},
    # A dotless ı is an i to a case-insensitive regex, not to str.lower().
    {"text": "authorızation: basıc QWxhZGRpbjpvcGVu"},
    {"headers": {"X-API-Key": "v"}, "Access-Token": "t"},
    {"pw": SecretStr("hunter22")},
    {"text": 'quote"and\\back', "s": 'we"ird\\sec\nret'},
    {"text": "sk-" + "a" * 20},
    {"text": "naïve café ✓", "key": ""},
    {(1, 2): "tuple key", "nan": float("nan")},
]


@pytest.mark.parametrize("data", TRICKY)
def test_fast_encoding_equals_the_full_walk(data):
    redact = Redactor.for_secrets((FAL, 'we"ird\\sec\nret'))
    full, _ = encode(redact(dict(data)), redact)
    assert encode_data(data, redact) == full
    for secret in ("very-secret-value", "defghijkl", "QWxhZGRpbjpvcGVu", "hunter22", 'sec\\nret',
                   "abcdefghijklmnop", "a" * 20):
        assert secret not in full


def test_clean_json_is_only_true_without_hints():
    redact = Redactor.for_secrets((FAL,))
    assert redact.clean_json('{"text":"a fox on a skateboard"}')
    for text in ('{"api_key":"x"}', '{"t":"BEARER x"}', '{"t":"very-secret-value"}',
                 '{"t":"sk-abc"}', '{"t":"caf\u00e9"}', '{"refresh-token":"x"}'):
        assert not redact.clean_json(text), text


def test_search_sees_rows_that_are_not_indexed_yet(store):
    sid = store.new_session("a", "p")
    store.record(sid, "user_prompt", {"text": "an otter juggling"}, **WHO)
    # Committed at once, but indexed for search only in batches...
    assert raw_rows("SELECT count(*) FROM events") == [(1,)]
    assert raw_rows("SELECT count(*) FROM events_fts") == [(0,)]
    # ...which any search (here: another store, as another process would) runs first.
    assert [e["kind"] for e in TranscriptStore().search("otter")] == ["user_prompt"]
    assert raw_rows("SELECT count(*) FROM events_fts") == [(1,)]
    store.record(sid, "answer", {"text": "the otter again"}, **WHO)
    assert [e["kind"] for e in store.search("otter")] == ["answer", "user_prompt"]  # each once


def test_a_batch_of_rows_gets_indexed_without_a_search(store):
    from agent.transcript.store import FTS_BATCH

    rows = [store.prepare("s", "tool_progress", {"i": i}, **WHO) for i in range(FTS_BATCH)]
    store.write(rows)
    assert raw_rows("SELECT count(*) FROM events_fts") == [(FTS_BATCH,)]


def test_closing_indexes_what_waits():
    store = TranscriptStore()
    store.record("s", "answer", {"text": "heron"}, **WHO)
    store.close()
    assert raw_rows("SELECT count(*) FROM events_fts") == [(1,)]


def test_model_requests_are_stored_whole_but_indexed_by_model(store):
    sid = store.new_session("a", "producer")
    store.record(sid, "model_request", {"model": "gpt-test", "messages": [
        {"role": "system", "content": "You are a zebra-striped producer."},
        {"role": "user", "content": "paint a walrus"}]}, **WHO)
    store.record(sid, "user_prompt", {"text": "paint a walrus"}, **WHO)
    assert [e["kind"] for e in store.search("walrus")] == ["user_prompt"]
    assert store.search("zebra") == []
    assert [e["kind"] for e in store.search("gpt-test")] == ["model_request"]
    assert store.events(sid)[0]["data"]["messages"][1]["content"] == "paint a walrus"


def test_upgrade_from_per_event_notes_loses_no_search_hit():
    """A database at m004 (a note per unindexed event) moves to m005's watermark."""
    path = locations.transcript_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    applied(db)
    for name, fn in MIGRATIONS[:4]:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    insert = ("INSERT INTO events (session_id, ts, kind, data) VALUES ('s', 0, 'answer', ?)")
    db.execute(insert, (json.dumps({"text": "indexed llama"}),))
    db.execute("INSERT INTO events_fts (rowid, text) VALUES (1, 'indexed llama answer')")
    db.execute("DELETE FROM fts_pending")
    db.execute(insert, (json.dumps({"text": "waiting llama"}),))  # noted, not indexed
    db.close()
    hits = TranscriptStore().search("llama")
    assert [h["data"]["text"] for h in hits] == ["waiting llama", "indexed llama"]
    assert raw_rows("SELECT last_id FROM fts_watermark") == [(2,)]


WRITER = textwrap.dedent("""
    from agent.transcript.store import TranscriptStore
    store = TranscriptStore()
    i = 0
    while True:
        eid = store.record("crash", "tool_progress", {"word": f"marker{i}x"},
                           user="crash", persona="producer")
        print(eid, i, flush=True)
        i += 1
""")


def test_kill_9_leaves_every_written_row_searchable(tmp_path):
    env = {**os.environ, "FAL_PERSONA_HOME": str(locations.home())}
    proc = subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE, env=env,
                            cwd=tmp_path, text=True)
    reported: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(reported) < 150 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(int(line.split()[1]))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL and len(reported) >= 150
    store = TranscriptStore()
    for i in (reported[0], reported[100], reported[-1]):
        assert [h["data"]["word"] for h in store.search(f"marker{i}x")] == [f"marker{i}x"]
