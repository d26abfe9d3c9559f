"""`fal-persona logs ...` through agent.cli.main, one run through the installed console script,
and the user config file behind `logs on|off`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agent import locations, userconfig
from agent.cli import main
from agent.transcript.store import TranscriptStore

SCRIPT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "fal-persona"


@pytest.fixture
def sessions():
    """Two sessions: alice as producer with a chain, bob as analyst with one answer."""
    store = TranscriptStore()
    a = store.new_session("alice", "producer", source="cli")
    who = {"user": "alice", "persona": "producer"}
    store.record(a, "user_prompt", {"text": "make a cat with flux"}, **who)
    store.record(a, "tool_call", {"name": "submit_queue_request",
                                  "args": {"endpoint_id": "fal-ai/flux/dev"}}, **who)
    store.record(a, "tool_result", {"name": "submit_queue_request", "result": {"request_id": "r-1"}},
                 **who, duration_s=0.2)
    b = store.new_session("bob", "analyst", source="tui")
    store.record(b, "answer", {"text": "the zebra costs 0.03"}, user="bob", persona="analyst")
    store.close()
    return a, b


def test_list(sessions, capsys):
    a, b = sessions
    assert main(["logs", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["SESSION", "STARTED", "USER", "PERSONA", "SOURCE", "EVENTS"]
    assert out[1].startswith(b) and out[1].split()[-1] == "1"  # newest first
    assert out[2].startswith(a) and out[2].split()[-3:] == ["producer", "cli", "3"]
    assert main(["logs", "list", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_list_when_empty(capsys):
    assert main(["logs", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no sessions recorded yet" in captured.err


def test_show_latest_and_by_prefix(sessions, capsys):
    a, b = sessions
    assert main(["logs", "show"]) == 0
    out = capsys.readouterr().out
    assert b in out.splitlines()[0] and "zebra" in out
    assert main(["logs", "show", a[:-1]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:]] == ["user_prompt", "tool_call", "tool_result"]


def test_search(sessions, capsys):
    a, _ = sessions
    assert main(["logs", "search", "fal-ai/flux/dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(a) and "tool_call" in lines[0]
    assert main(["logs", "search", "nothing-like-this"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no matches" in captured.err
    assert main(["logs", "search", 'AND "(']) == 0  # FTS syntax is not the user's problem


def test_export_jsonl_to_stdout(sessions, capsys):
    a, b = sessions
    assert main(["logs", "export", "--format", "jsonl"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["session_id"] for e in events] == [a, a, a, b]
    assert {"id", "ts", "kind", "user", "persona", "duration_s", "ref", "data"} <= set(events[0])
    assert main(["logs", "export", b]) == 0  # jsonl is the default
    [only] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert only["data"] == {"text": "the zebra costs 0.03"}


def test_export_md_to_file(sessions, capsys, tmp_path):
    a, _ = sessions
    target = tmp_path / "out.md"
    assert main(["logs", "export", a, "--format", "md", "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    md = target.read_text()
    assert md.startswith("# fal-persona transcript") and f"## Session {a}" in md
    assert "> make a cat with flux" in md and "tool_result · submit_queue_request" in md


@pytest.mark.parametrize(("argv", "message"), [
    (["logs", "show", "no-such"], "no session 'no-such'"),
    (["logs", "export", "no-such"], "no session 'no-such'"),
    (["logs", "search", "  "], "empty search query"),
    (["logs", "list", "--limit", "0"], "--limit must be at least 1"),
    (["logs", "export", "-o", "/nonexistent-dir/x.jsonl"], "cannot write /nonexistent-dir/x.jsonl"),
])
def test_errors_are_one_line_on_stderr(sessions, capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    assert captured.err.startswith("fal-persona: ")


def test_show_with_no_sessions_is_an_error(capsys):
    assert main(["logs", "show"]) == 2
    assert "no sessions recorded yet" in capsys.readouterr().err


def test_off_and_on_persist(capsys):
    assert main(["logs", "off"]) == 0
    assert userconfig.get("transcript", "enabled") is False
    assert "logging is off" in capsys.readouterr().err
    store = TranscriptStore()
    assert store.record(store.new_session("a", "p"), "answer", {"text": "x"},
                        user="a", persona="p") is None
    assert main(["logs", "list"]) == 0
    assert "logging is off" in capsys.readouterr().err
    assert main(["logs", "on"]) == 0
    assert userconfig.transcript_enabled() is True


def test_off_keeps_other_settings_and_broken_config_is_reported(capsys):
    userconfig.save({"ui": {"theme": "nord"}, "keys": {"quit": "ctrl+q", "weird key": "x\"y"}})
    assert main(["logs", "off"]) == 0
    assert userconfig.load() == {"ui": {"theme": "nord"},
                                 "keys": {"quit": "ctrl+q", "weird key": "x\"y"},
                                 "transcript": {"enabled": False}}
    locations.config_file().write_text("[transcript\nenabled = ")
    capsys.readouterr()
    assert main(["logs", "on"]) == 2
    err = capsys.readouterr().err
    assert "config.toml: TOML syntax error" in err and err.count("\n") == 1


def test_userconfig_roundtrip_and_typed_errors():
    data = {"a": {"s": "tab\there ✓", "n": 3, "f": 0.5, "b": True, "l": [1, "two"]}}
    userconfig.save(data)
    assert userconfig.load() == data
    assert userconfig.get("a", "n") == 3 and userconfig.get("a", "zz", "dflt") == "dflt"
    assert userconfig.get("missing", "x", 7) == 7
    with pytest.raises(userconfig.UserConfigError, match="cannot store a dict"):
        userconfig.set_value("a", "nested", {"x": 1})
    with pytest.raises(userconfig.UserConfigError, match="cannot be stored"):
        userconfig.set_value("a", "inf", float("inf"))
    assert userconfig.load() == data  # a failed write changed nothing
    userconfig.set_value("transcript", "enabled", "no")
    with pytest.raises(userconfig.UserConfigError, match="transcript.enabled: expected true or false"):
        userconfig.transcript_enabled()


def test_installed_console_script(sessions, tmp_path):
    if not SCRIPT.exists():
        pytest.skip("console script not installed in .venv")
    a, b = sessions
    env = {**os.environ, "FAL_PERSONA_HOME": str(locations.home())}
    done = subprocess.run([str(SCRIPT), "logs", "export", "--format", "jsonl"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["session_id"] for line in done.stdout.splitlines()] == [a, a, a, b]
    bad = subprocess.run([str(SCRIPT), "logs", "show", "no-such"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.strip() == "fal-persona: no session 'no-such'"


def test_a_write_keeps_the_users_comments_and_layout(capsys):
    path = locations.config_file()
    path.write_text('# my switches\n[ui]\ntheme = "nord"  # easy on the eyes\n\n'
                    '[transcript]\n# keep a record of everything\nenabled = true\n')
    assert main(["logs", "off"]) == 0
    text = path.read_text()
    assert text == ('# my switches\n[ui]\ntheme = "nord"  # easy on the eyes\n\n'
                    '[transcript]\n# keep a record of everything\nenabled = false\n')
    userconfig.save({"ui": {"theme": "nord"}, "keys": {"quit": "ctrl+x"}})
    text = path.read_text()
    assert "# my switches" in text and "# easy on the eyes" in text and "[transcript]" not in text
    assert userconfig.load() == {"ui": {"theme": "nord"}, "keys": {"quit": "ctrl+x"}}
