"""The model server's failures end the turn as errors: a cut-off stream, a server that stalls."""

from __future__ import annotations

import time

import pytest
from scripted_openai import ScriptedOpenAI, text

from agent.core.events import ErrorEvent, Token, TurnEnd
from agent.core.runner import AgentRunner
from agent.settings import Settings


async def _turn(runner, prompt="hello"):
    return [e async for e in runner.run_turn(prompt, None)]


async def test_a_cut_off_stream_is_an_error_not_an_answer(monkeypatch, personas, fake_tools):
    with ScriptedOpenAI([{**text("Here is half of my ans"), "cut": True}], repeat_last=True) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        runner = AgentRunner(Settings(FAL_PERSONA_LLM_MAX_RETRIES=0), personas["producer"], fake_tools, user="t")
        events = await _turn(runner)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and "cut its reply off" in errors[0].message
    end = events[-1]
    assert isinstance(end, TurnEnd) and end.answer == ""


async def test_a_whole_stream_still_answers(monkeypatch, personas, fake_tools):
    with ScriptedOpenAI([text("A complete answer.")]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        runner = AgentRunner(Settings(), personas["producer"], fake_tools, user="t")
        events = await _turn(runner)
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert "".join(e.text for e in events if isinstance(e, Token)) == "A complete answer."


async def test_a_stalling_server_times_out_at_the_configured_bound(monkeypatch, personas, fake_tools):
    with ScriptedOpenAI([{**text("late"), "delay_s": 60}], repeat_last=True) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        settings = Settings(FAL_PERSONA_LLM_TIMEOUT_S=0.5, FAL_PERSONA_LLM_MAX_RETRIES=1)
        runner = AgentRunner(settings, personas["producer"], fake_tools, user="t")
        started = time.monotonic()
        events = await _turn(runner)
        took = time.monotonic() - started
        assert len(srv.requests) == 2  # one try and the one retry the settings allow
    assert took < 30  # two 0.5 s waits and a back-off, not the server's 60 s (or the client's 600 s)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and "did not answer in time" in errors[0].message


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_bad_llm_timeout_is_refused_by_name(monkeypatch, value):
    from pydantic import ValidationError

    from tools.fal.config import settings_error_text

    monkeypatch.setenv("FAL_PERSONA_LLM_TIMEOUT_S", value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "FAL_PERSONA_LLM_TIMEOUT_S" in settings_error_text(info.value)
