"""`fal-persona ask --continue` / `--resume ID`: the next request goes on in the same session,
and the model is sent the earlier conversation."""

from __future__ import annotations

import json

import pytest
from resume_support import ScriptedOpenAI, text

from agent.cli import main
from agent.transcript.store import TranscriptStore

pytest.importorskip("sandbox.server")


def ask(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["ask", "--json", *argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else {}), out.err


@pytest.fixture
def model(monkeypatch):
    with ScriptedOpenAI([text("Noted: kumquat."), text("The word was kumquat."), text("Still kumquat.")]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        yield srv


def test_ask_continue_carries_the_conversation(capsys, model):
    code, first, _ = ask(capsys, "remember the word kumquat")
    assert code == 0 and first["answer"] == "Noted: kumquat."
    code, second, _ = ask(capsys, "--continue", "which word did I give you?")
    assert code == 0 and second["session_id"] == first["session_id"]
    sent = [(m["role"], m["content"]) for m in model.requests[1]["messages"] if m["role"] != "system"]
    assert sent == [("user", "remember the word kumquat"), ("assistant", "Noted: kumquat."),
                    ("user", "which word did I give you?")]
    code, third, _ = ask(capsys, "--resume", first["session_id"][:18], "and now?")
    assert code == 0 and third["session_id"] == first["session_id"]
    assert [m["role"] for m in model.requests[2]["messages"] if m["role"] == "user"] == ["user"] * 3
    kinds = [e["kind"] for e in TranscriptStore().events(first["session_id"])]
    assert kinds.count("user_prompt") == 3 and kinds.count("answer") == 3


def test_ask_continue_with_nothing_stored_says_so(capsys, model):
    code, out, err = ask(capsys, "--continue", "hello?")
    assert code == 2 and out == {}
    assert "cannot continue: there is no conversation to continue yet" in err
    code, out, err = ask(capsys, "--resume", "no-such-session", "hello?")
    assert code == 2 and "no session 'no-such-session'" in err
    assert model.requests == []  # nothing was sent to the model
