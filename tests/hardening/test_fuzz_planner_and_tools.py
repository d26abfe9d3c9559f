"""Issue 12.8 (agent side): arbitrary input gets a typed answer, never a crash or a hang.

* the planner's grammar: any text parses to steps or raises GrammarError (nothing else);
* every tool's argument schema: any JSON arguments give a ToolMessage; a failure is content
  starting `Error:` with an `{"error": {"type": ...}}` artifact naming its type.

Example counts are bounded, and each example has a deadline (a regex that backtracks without
end would blow it)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.planner.grammar import GrammarError, Step, parse
from tools.catalog import build_fal_tools
from tools.fal.client import FalClient
from tools.fal.config import FalConfig

WORDS = ["search", "price", "estimate", "submit", "generate", "status", "watch", "result", "cancel",
         "jwks", "help", "then", "and then", ";", "prompt", "with", "of", "in", "limit", "top", "it",
         "fal-ai/flux/dev", "fal-ai/flux/schnell", '"', "'", "“", "”", "{", "}", "[", "]", ":", "=",
         "key=value", "num_images=2", "$last", "$url", "00000000-0000-0000-0000-000000000000", "\n", " ",
         "notes_save_note", "text-to-image", "10", "1e309", "-1", "images", "calls"]
grammarish = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=30).map(" ".join)


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), grammarish))
@example("submit fal-ai/flux/dev " + '{"prompt": ' * 200)
@example("search " + "a" * 20000)
@example("estimate " + "9" * 5000 + " fal-ai/flux/dev")
@example("submit fal-ai/x prompt " + '"' * 3001)
@example("k" * 50 + "_" + "=" * 5000)
@example("then " * 2000)
@example("\x00\ud800\uffff")
def test_any_text_parses_or_is_not_understood(text):
    try:
        steps = parse(text)
    except GrammarError as exc:
        assert isinstance(exc.step, str) and str(exc)
        return
    assert steps and all(isinstance(s, Step) for s in steps)
    for step in steps:
        assert step.tool is None or isinstance(step.tool, str)
        json.dumps(step.args, default=str)  # arguments a tool can be called with


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)

FIELDS = ["endpoint_id", "request_id", "arguments", "webhook_url", "priority", "logs", "timeout_s", "query",
          "category", "status", "endpoint_ids", "limit", "cursor", "expand_openapi", "estimate_type", "endpoints",
          "start_timeout_s", "input_fields", "path", "file_name", "content_type", "lifecycle"]
arguments = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), json_values, max_size=6)


def _answer(request: httpx.Request) -> httpx.Response:
    """fal's answer to anything that got past the checks: a 404, quickly, never a retry."""
    return httpx.Response(404, json={"detail": "Not found"}, headers={"x-fal-request-id": "req-fuzz"})


@pytest.fixture(scope="module")
def tools():
    config = FalConfig(FAL_KEY="fuzz-id:fuzz-secret", FAL_QUEUE_BASE_URL="http://queue.fuzz",
                       FAL_API_BASE_URL="http://api.fuzz/v1", FAL_REST_BASE_URL="http://rest.fuzz",
                       FAL_CDN_BASE_URL="http://cdn.fuzz", FAL_DEADLINE_S=2, FAL_MAX_RETRIES=0)
    client = FalClient(config, transport=httpx.MockTransport(_answer))
    return build_fal_tools(client=client, include_upload=True)


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("index", range(10), ids=lambda i: f"tool{i}")
def test_any_json_arguments_get_a_typed_answer(tools, loop, index, tmp_path_factory, monkeypatch):
    tool = tools[index]
    monkeypatch.chdir(tmp_path_factory.mktemp("fuzz"))  # relative upload paths find nothing

    @settings(max_examples=120, deadline=3000, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
    @given(arguments)
    def check(args):
        message = loop.run_until_complete(asyncio.wait_for(
            tool.ainvoke({"type": "tool_call", "id": "call-fuzz", "name": tool.name, "args": args}), 10))
        content = message.content if isinstance(message.content, str) else str(message.content)
        assert content, args
        error = message.artifact.get("error") if isinstance(message.artifact, dict) else None
        if content.startswith("Error:"):
            assert isinstance(error, dict) and isinstance(error.get("type"), str) and error["type"], (args, content)
            assert "Traceback" not in content
        json.dumps(message.artifact, default=str)

    check()
