"""Issue 12 findings not covered elsewhere, each as the user met it (see the report's table for
the tests of the others): the error names the request id that was asked about (8), a cut-off
model stream makes `ask` exit non-zero (6), the model's echoed key never reaches `ask`'s
output in-process either (2)."""

from __future__ import annotations

import json

import httpx
import pytest

from agent.cli import ask, main
from tests.agent.scripted_openai import ScriptedOpenAI, text
from tools.fal import errors as E
from tools.fal.client import FalClient
from tools.fal.config import FalConfig

EP = "fal-ai/flux/dev"
ASKED = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"


def _client(status: int) -> FalClient:
    def handler(request: httpx.Request) -> httpx.Response:
        # The error response carries an id of its own (a gateway's, another request's).
        return httpx.Response(status, json={"detail": "nope"}, headers={"x-fal-request-id": "gateway-id-777"})

    config = FalConfig(FAL_KEY="find-id:find-secret", FAL_QUEUE_BASE_URL="http://q.test", FAL_MAX_RETRIES=0)
    return FalClient(config, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("status", [404, 422, 500])
@pytest.mark.parametrize("op", ["status", "result", "cancel"])
async def test_errors_carry_the_request_id_that_was_asked_about(op, status):
    async with _client(status) as fal:
        if (op, status) == ("cancel", 404):  # not an error: fal does not know it, said for that id
            assert (await fal.cancel(EP, ASKED)).request_id == ASKED
            return
        with pytest.raises(E.FalError) as info:
            await getattr(fal, op)(EP, ASKED)
    assert info.value.request_id == ASKED
    assert "gateway-id-777" not in str(info.value.to_dict().get("request_id"))


def test_ask_exits_7_on_a_cut_off_model_stream(monkeypatch, capsys):
    with ScriptedOpenAI([{**text("Here is half of my ans"), "cut": True}], repeat_last=True) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
        monkeypatch.setenv("FAL_PERSONA_LLM_MAX_RETRIES", "0")
        code = main(["ask", "--no-listen", "--json", "hello"])
    data = json.loads(capsys.readouterr().out)
    assert code == data["exit_code"] == ask.EXIT_TURN_FAILED
    assert "cut" in data["error"] and data["answer"] == ""


@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_ask_never_prints_a_key_the_model_echoes(monkeypatch, capsys, mode):
    key = "sk-echoed-0123456789abcdefghij"
    fal_key = "echo-id-0042:echo-secret-0042xyz"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with ScriptedOpenAI([text(f"Your keys are {key} and {fal_key!r}, secret half {fal_key.split(':')[1]}.")]) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
        monkeypatch.setenv("FAL_KEY", fal_key)
        monkeypatch.setenv("FAL_QUEUE_BASE_URL", "http://127.0.0.1:9")
        code = main(["ask", "--no-listen", *mode, "what are my keys?"])
    out = capsys.readouterr()
    assert code == 0 and "Your keys are [REDACTED]" in out.out
    for secret in (key, fal_key, fal_key.split(":")[1], "echo-id-0042"):
        assert secret not in out.out and secret not in out.err
