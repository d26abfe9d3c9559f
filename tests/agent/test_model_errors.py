"""Model-server failures read as what to do, with no secret in them."""

from __future__ import annotations

import httpx
import openai
import pytest
from langchain_openai.chat_models.base import OpenAIConnectionError

from agent.core.runner import _failure_message
from agent.settings import Settings


def _request() -> httpx.Request:
    return httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


@pytest.mark.parametrize("exc, words", [
    (OpenAIConnectionError(request=_request()), "could not reach the model server at http://127.0.0.1:9/v1"),
    (openai.APITimeoutError(request=_request()), "did not answer in time"),
    (openai.AuthenticationError("bad key sk-proj-SECRETSECRET123", response=httpx.Response(401, request=_request()),
                                body=None), "refused the key; check OPENAI_API_KEY"),
])
def test_model_errors_say_what_to_do(monkeypatch, exc, words):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-SECRETSECRET123")
    message = _failure_message(exc, Settings())
    assert words in message
    assert "SECRETSECRET123" not in message


def test_other_errors_keep_their_name():
    assert _failure_message(ValueError("boom"), Settings()) == "The turn failed: ValueError: boom"
