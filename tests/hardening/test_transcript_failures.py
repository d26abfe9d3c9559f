"""Issue 12.7: a transcript that cannot be written is never silent. `ask` prints the answer,
says why on stderr and exits 10 (README, "Exit codes of ask"); the TUI shows it as an error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.cli import ask, main

REQUEST = "search flux"


def _corrupt(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "transcript.sqlite3").write_bytes(b"not a database, only garbage bytes " * 200)


def _directory_in_its_place(home: Path) -> None:
    (home / "transcript.sqlite3").mkdir(parents=True)


def _failing_writes(message: str):
    def arrange(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import agent.transcript.store as store

        def refuse(*args, **kwargs):
            raise sqlite3.OperationalError(message)

        monkeypatch.setattr(store, "write_rows", refuse)
    return arrange


CASES = {
    "corrupt file": lambda home, mp: _corrupt(home),
    "unopenable path": lambda home, mp: _directory_in_its_place(home),
    "read-only database": _failing_writes("attempt to write a readonly database"),
    "disk error on write": _failing_writes("disk I/O error"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ask_says_so_on_stderr_exits_10_and_still_prints_the_answer(case, tmp_path, monkeypatch, capsys):
    CASES[case](tmp_path / "home", monkeypatch)
    code = main(["ask", "--no-listen", REQUEST])
    out = capsys.readouterr()
    assert code == ask.EXIT_TRANSCRIPT_FAILED == 10
    assert "fal-ai/flux/dev" in out.out  # the answer
    last = out.err.strip().splitlines()[-1]
    assert last.startswith("fal-persona: transcript write failed") and "Traceback" not in out.err


def test_ask_json_carries_the_code_and_reason(tmp_path, monkeypatch, capsys):
    _corrupt(tmp_path / "home")
    code = main(["ask", "--no-listen", "--json", REQUEST])
    data = json.loads(capsys.readouterr().out)
    assert code == data["exit_code"] == 10
    assert data["answer"] and data["error"].startswith("transcript write failed")


def test_a_tool_failure_still_decides_and_the_transcript_failure_is_said_too(tmp_path, monkeypatch, capsys):
    _failing_writes("disk I/O error")(tmp_path / "home", monkeypatch)
    code = main(["ask", "--no-listen", "status fal-ai/flux/dev 00000000-0000-0000-0000-000000000000"])
    err = capsys.readouterr().err
    assert code in (ask.EXIT_TOOL_FAILED, ask.EXIT_TRANSCRIPT_FAILED)
    assert "transcript write failed" in err  # said, whichever failure came first


def test_a_writable_transcript_exits_0(capsys):
    assert main(["ask", "--no-listen", REQUEST]) == 0
    assert "transcript" not in capsys.readouterr().err


async def test_tui_shows_the_failure_as_an_error(tmp_path):
    from agent.tui.chat import AnswerMessage, ErrorMessage
    from tests.tui.conftest import make_app, send, wait_for
    from tests.tui.real_runtime import RealFactory

    (tmp_path / "transcript.sqlite3").write_bytes(b"garbage, not sqlite " * 300)
    factory = RealFactory(tmp_path)
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "search flux")
        await wait_for(pilot, lambda: app.turn_worker is not None and app.turn_worker.is_finished,
                       timeout=15, what="turn")
        await pilot.pause()
        errors = [str(w.content) for w in app.query(ErrorMessage)]
        assert any("transcript write failed" in e for e in errors), errors
        assert app.query(AnswerMessage)  # the answer is on screen too
