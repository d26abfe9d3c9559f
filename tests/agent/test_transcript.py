"""The transcript store: append-only, migrated, redacted, searchable, durable under kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from agent import locations, userconfig
from agent.redact import MASK
from agent.transcript.migrations import MIGRATIONS
from agent.transcript.store import KINDS, TranscriptError, TranscriptStore

WHO = {"user": "alice", "persona": "producer"}


@pytest.fixture
def store():
    with TranscriptStore() as s:
        yield s


def test_contract_kinds():
    assert KINDS == {"user_prompt", "model_request", "model_response", "tool_call",
                     "tool_progress", "tool_result", "tool_error", "approval", "answer",
                     "error", "trigger_event", "trigger_action", "schedule_run", "persona_switch",
                     "approval_request", "job_state"}


def test_record_and_read_back(store):
    sid = store.new_session("alice", "producer", source="cli")
    first = store.record(sid, "user_prompt", {"text": "find flux"}, **WHO)
    second = store.record(sid, "tool_call", {"name": "search_models", "args": {"query": "flux"}},
                          **WHO, duration_s=0.25, ref="wh-1")
    assert isinstance(first, int) and second == first + 1
    events = store.events(sid)
    assert [e["kind"] for e in events] == ["user_prompt", "tool_call"]
    assert events[1]["data"] == {"name": "search_models", "args": {"query": "flux"}}
    assert events[1]["duration_s"] == 0.25 and events[1]["ref"] == "wh-1"
    assert events[0]["user"] == "alice" and events[0]["persona"] == "producer"
    assert events[0]["ts"].endswith("Z") and events[0]["ts"][:2] == "20"
    [session] = store.list_sessions()
    assert session["id"] == sid and session["events"] == 2 and session["source"] == "cli"


def test_file_is_in_the_data_dir_in_wal_mode(store):
    store.record(store.new_session("a", "p"), "answer", {"text": "hi"}, **WHO)
    assert store.path == locations.transcript_db() and store.path.exists()
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [name for name, _ in MIGRATIONS]


def test_migrations_run_once(store):
    store.record(store.new_session("a", "p"), "answer", {"text": "x"}, **WHO)
    store.close()
    again = TranscriptStore()
    assert again.list_sessions()[0]["events"] == 1  # reopening neither fails nor loses data
    db = sqlite3.connect(again.path)
    assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


@pytest.mark.parametrize("sql", [
    "UPDATE events SET data = '{}'",
    "DELETE FROM events",
    "UPDATE sessions SET user = 'mallory'",
    "DELETE FROM sessions",
])
def test_append_only_is_enforced_by_the_database(store, sql):
    sid = store.new_session("a", "p")
    store.record(sid, "answer", {"text": "keep me"}, **WHO)
    db = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(sql)
    assert store.events(sid)[0]["data"] == {"text": "keep me"}


def test_secrets_are_redacted_before_writing(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "keyid-1234:very-secret-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwx")
    store = TranscriptStore()
    sid = store.new_session("alice", "producer")
    store.record(sid, "model_request", {
        "messages": [{"content": "key is keyid-1234:very-secret-value"}],
        "headers": {"Authorization": "Key keyid-1234:very-secret-value"},
        "note": "openai sk-abcdefghijklmnopqrstuvwx", "other": "Bearer zzzzzzzzzzzzzzzz",
    }, **WHO)
    store.close()
    raw = locations.transcript_db().read_bytes()
    wal = locations.transcript_db().with_name("transcript.sqlite3-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    for secret in (b"very-secret-value", b"sk-abcdefghijklmnopqrstuvwx", b"zzzzzzzzzzzzzzzz"):
        assert secret not in raw
    data = TranscriptStore().events(sid)[0]["data"]
    assert data["headers"]["Authorization"] == MASK
    assert MASK in data["messages"][0]["content"]


def test_secret_from_dotenv_is_redacted(tmp_path):
    (tmp_path / ".env").write_text("OPENAI_API_KEY=plainsecret42\n")  # no sk- shape
    store = TranscriptStore()
    sid = store.new_session("a", "p")
    store.record(sid, "error", {"message": "auth failed for plainsecret42"}, **WHO)
    assert store.events(sid)[0]["data"]["message"] == f"auth failed for {MASK}"


def test_disabled_store_writes_nothing():
    store = TranscriptStore(enabled=False)
    sid = store.new_session("a", "p")
    assert isinstance(sid, str) and sid
    assert store.record(sid, "user_prompt", {"text": "hi"}, **WHO) is None
    assert not locations.transcript_db().exists()


def test_env_switch_turns_logging_off(monkeypatch):
    monkeypatch.setenv("FAL_PERSONA_NO_LOG", "1")
    assert TranscriptStore().enabled is False


def test_persistent_switch_turns_logging_off():
    userconfig.set_value("transcript", "enabled", False)
    store = TranscriptStore()
    assert store.enabled is False
    assert store.record(store.new_session("a", "p"), "answer", {"text": "x"}, **WHO) is None
    userconfig.set_value("transcript", "enabled", True)
    assert TranscriptStore().enabled is True


def test_bad_input_is_rejected_with_typed_errors(store):
    sid = store.new_session("a", "p")
    with pytest.raises(ValueError, match="unknown transcript event kind 'typo'"):
        store.record(sid, "typo", {}, **WHO)
    with pytest.raises(TypeError, match="must be a dict"):
        store.record(sid, "answer", ["not", "a", "dict"], **WHO)  # type: ignore[arg-type]  # a wrong type on purpose
    assert store.events(sid) == []


def test_awkward_values_are_stored_faithfully(store):
    sid = store.new_session("a", "p")

    class Thing:
        def __str__(self):
            return "a thing"

    store.record(sid, "tool_result", {"nan": float("nan"), "blob": b"\x00\x01", "obj": Thing(),
                                      "set": {3, 1}, (1, 2): "tuple key", "ünï": "cødé ✓"}, **WHO)
    data = store.events(sid)[0]["data"]
    assert data["nan"] == "nan" and data["blob"] == "<2 bytes>" and data["obj"] == "a thing"
    assert data["set"] == [1, 3] and data["(1, 2)"] == "tuple key" and data["ünï"] == "cødé ✓"
    assert store.search("cødé")[0]["id"] == store.events(sid)[0]["id"]


def test_search_finds_words_prefixes_and_kinds(store):
    sid = store.new_session("a", "p")
    store.record(sid, "user_prompt", {"text": "a cat on a skateboard"}, **WHO)
    store.record(sid, "tool_call", {"name": "submit_queue_request",
                                    "args": {"endpoint_id": "fal-ai/flux/dev"}}, **WHO)
    store.record(sid, "tool_error", {"name": "get_queue_result", "error": "request failed"}, **WHO)
    assert [e["kind"] for e in store.search("skateboard")] == ["user_prompt"]
    assert [e["kind"] for e in store.search("skate*")] == ["user_prompt"]
    assert [e["kind"] for e in store.search("fal-ai/flux/dev")] == ["tool_call"]
    assert [e["kind"] for e in store.search("tool_error")] == ["tool_error"]
    assert store.search("cat failed") == []  # every word must match the same event
    hit = store.search("skateboard")[0]
    assert "[skateboard]" in hit["snippet"] and hit["session_id"] == sid


@pytest.mark.parametrize("query", ['"', "AND", "a OR", "NEAR(", "col:x", "*", "(((", "'; DROP"])
def test_search_never_raises_on_fts_syntax(store, query):
    store.record(store.new_session("a", "p"), "answer", {"text": "AND OR NEAR"}, **WHO)
    assert isinstance(store.search(query), list)


def test_search_of_nothing_is_a_typed_error(store):
    with pytest.raises(TranscriptError, match="empty search query"):
        store.search("   ")


def test_export_jsonl_and_markdown(store):
    a = store.new_session("alice", "producer")
    store.record(a, "user_prompt", {"text": "estimate 4 images"}, **WHO)
    store.record(a, "tool_result", {"name": "estimate_pricing", "result": {"total_cost": 0.1}},
                 **WHO, duration_s=0.1)
    b = store.new_session("bob", "analyst")
    store.record(b, "answer", {"text": "done"}, user="bob", persona="analyst")

    lines = store.export(a, fmt="jsonl").splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["user_prompt", "tool_result"]
    everything = [json.loads(line) for line in store.export(fmt="jsonl").splitlines()]
    assert [e["session_id"] for e in everything] == [a, a, b]

    md = store.export(a, fmt="md")
    assert f"## Session {a}" in md and "> estimate 4 images" in md
    assert "tool_result · estimate_pricing · 0.100s" in md and '"total_cost": 0.1' in md
    assert f"## Session {b}" not in md
    assert store.export(fmt="md").index(a) < store.export(fmt="md").index(b)


def test_export_errors_and_prefixes(store):
    sid = store.new_session("a", "p")
    store.record(sid, "answer", {"text": "x"}, **WHO)
    assert store.resolve_session(sid[:-2]) == sid
    with pytest.raises(TranscriptError, match="no session"):
        store.export("nope")
    with pytest.raises(TranscriptError, match="unknown export format"):
        store.export(sid, fmt="xml")  # type: ignore[arg-type]  # an unknown format on purpose
    store.new_session("a", "p")
    with pytest.raises(TranscriptError, match="ambiguous"):
        store.resolve_session("2")


def test_record_for_unknown_session_creates_it(store):
    store.record("from-webhook", "trigger_event", {"request_id": "r1"}, **WHO, ref="evt-9")
    [session] = store.list_sessions()
    assert session["id"] == "from-webhook" and session["events"] == 1


def test_concurrent_writers_lose_nothing(store):
    sid = store.new_session("a", "p")
    ids: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(100):
            eid = store.record(sid, "tool_progress", {"writer": n, "i": i}, **WHO)
            with lock:
                ids.append(eid)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.events(sid)
    assert len(events) == 400 and sorted(ids) == [e["id"] for e in events]
    assert {(e["data"]["writer"], e["data"]["i"]) for e in events} == {
        (n, i) for n in range(4) for i in range(100)}


def test_two_stores_on_one_file_interleave(store):
    other = TranscriptStore()
    sid = store.new_session("a", "p")
    store.record(sid, "user_prompt", {"text": "one"}, **WHO)
    other.record(sid, "answer", {"text": "two"}, **WHO)
    assert [e["data"]["text"] for e in store.events(sid)] == ["one", "two"]


WRITER = textwrap.dedent("""
    import sys
    from agent.transcript.store import TranscriptStore
    store = TranscriptStore()
    sid = store.new_session("crash", "producer", source="test")
    i = 0
    while True:
        eid = store.record(sid, "tool_progress", {"i": i, "pad": "x" * 200},
                           user="crash", persona="producer")
        print(sid, eid, i, flush=True)
        i += 1
""")


def test_kill_9_loses_nothing_already_written(tmp_path):
    env = {**os.environ, "FAL_PERSONA_HOME": str(locations.home())}
    proc = subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE, env=env,
                            cwd=tmp_path, text=True)
    reported: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + 60
    try:
        while len(reported) < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            sid, eid, i = line.split()
            reported.append((sid, int(eid), int(i)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(reported) >= 300, "writer did not report enough events before the deadline"
    sid = reported[0][0]
    stored = {e["id"]: e["data"]["i"] for e in TranscriptStore().events(sid)}
    for _, eid, i in reported:
        assert stored.get(eid) == i, f"event {eid} (i={i}) reported written but missing"


def test_a_file_that_is_not_a_database_is_a_typed_error():
    locations.transcript_db().write_bytes(b"this is not sqlite" * 100)
    store = TranscriptStore()
    with pytest.raises(TranscriptError, match="cannot open transcript"):
        store.record("s", "answer", {"text": "x"}, **WHO)
    with pytest.raises(TranscriptError, match="cannot open transcript"):
        store.list_sessions()


def test_bad_session_id_is_a_typed_error(store):
    with pytest.raises(TypeError, match="session_id"):
        store.record("", "answer", {}, **WHO)
    with pytest.raises(TypeError, match="session_id"):
        store.record(None, "answer", {}, **WHO)  # type: ignore[arg-type]  # no session on purpose
