"""A call LangChain's schema check rejects still answers with content and an error artifact."""

from __future__ import annotations

import httpx
import pytest

from tools import build_fal_tools
from tools.fal.client import FalClient
from tools.fal.config import FalConfig


@pytest.fixture
def tools_and_requests():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    config = FalConfig(FAL_KEY="id:secret", FAL_QUEUE_BASE_URL="http://fal.test",
                       FAL_API_BASE_URL="http://fal.test/v1", FAL_JWKS_URL="http://fal.test/jwks")
    client = FalClient(config, transport=httpx.MockTransport(handler))
    return {t.name: t for t in build_fal_tools(client=client)}, seen


BAD_CALLS = [
    ("estimate_pricing", {"estimate_type": "by_vibes", "endpoints": {"fal-ai/flux/dev": 1}}),
    ("get_queue_status", {"endpoint_id": "fal-ai/flux/dev"}),  # request_id missing
    ("search_models", {"limit": "many"}),
]


@pytest.mark.parametrize("name, args", BAD_CALLS)
async def test_async_schema_failure_has_error_artifact(tools_and_requests, name, args):
    tools, seen = tools_and_requests
    msg = await tools[name].ainvoke({"name": name, "args": args, "id": "c1", "type": "tool_call"})
    assert msg.content.startswith("Error: invalid arguments")
    assert msg.artifact["error"]["type"] == "InputError"
    assert seen == []


@pytest.mark.parametrize("name, args", BAD_CALLS)
def test_sync_schema_failure_has_error_artifact(tools_and_requests, name, args):
    tools, seen = tools_and_requests
    msg = tools[name].invoke({"name": name, "args": args, "id": "c1", "type": "tool_call"})
    assert msg.content.startswith("Error: invalid arguments")
    assert msg.artifact["error"]["type"] == "InputError"
    assert seen == []
