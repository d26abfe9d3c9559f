"""`fal-persona mcp --transport http` off loopback (or with --require-token): a start-up token
every request must carry, as `Authorization: Bearer` or `?token=` (agent/mcp/auth.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import WAIT_S, http_session, write_persona

from agent.mcp.auth import TokenGate, make_token, presented

pytestmark = pytest.mark.timeout(180)


async def _ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"in"})


def test_a_token_is_made_off_loopback_or_when_asked():
    assert make_token("127.0.0.1") is None and make_token("localhost") is None and make_token("::1") is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.test"):
        token = make_token(host)
        assert token and len(token) >= 32
    assert make_token("127.0.0.1", require_token=True)
    assert make_token("0.0.0.0") != make_token("0.0.0.0")  # fresh each start


def test_the_token_is_read_from_the_bearer_header_or_the_query():
    def scope(headers=(), query=b""):
        return {"type": "http", "headers": list(headers), "query_string": query}

    assert presented(scope([(b"authorization", b"Bearer abc")])) == "abc"
    assert presented(scope([(b"Authorization", b"bearer   abc ")])) == "abc"
    assert presented(scope([(b"authorization", b"Basic abc")])) is None
    assert presented(scope(query=b"a=1&token=xyz")) == "xyz"
    assert presented(scope()) is None


@pytest.mark.parametrize(("headers", "query", "status"), [
    ({}, "", 401),
    ({"Authorization": "Bearer wrong"}, "", 401),
    ({"Authorization": "Key s3cret-token"}, "", 401),
    ({}, "?token=wrong", 401),
    ({"Authorization": "Bearer s3cret-token"}, "", 200),
    ({}, "?token=s3cret-token", 200),
])
async def test_the_gate_lets_only_the_token_through(headers, query, status):
    gate = TokenGate(_ok_app, "s3cret-token")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://testserver") as client:
        answer = await client.post("/mcp" + query, headers=headers, content=b"{}")
    assert answer.status_code == status
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"] == "unauthorized" and "s3cret" not in answer.text
    else:
        assert answer.text == "in"


def test_an_empty_token_is_refused():
    with pytest.raises(ValueError):
        TokenGate(_ok_app, "")


async def test_the_served_token_is_required_over_http_and_shown_only_at_start(home, http_server):
    server = http_server("--persona", "analyst", "--require-token")
    token = server.token
    assert token and token not in server.url
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        bare = await client.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                 headers={"Accept": "application/json, text/event-stream"})
    assert bare.status_code == 401
    async with asyncio.timeout(WAIT_S):
        async with http_session(server.url, headers={"Authorization": f"Bearer {token}"}) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            found = await session.call_tool("search_models", {"query": "flux", "limit": 2})
        async with http_session(f"{server.url}?token={token}") as session:
            assert (await session.list_tools()).tools
    assert "search_models" in names and not found.isError
    server.stop()
    # The token is printed once (on stderr, at start) and written nowhere else.
    leaked = [p for p in home.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaked == []
    assert sum(token in line for line in server.stderr) == 1


async def test_a_persona_reaches_a_token_server_through_its_headers(home, http_server, monkeypatch):
    from agent.core.runtime import build_runtime
    from agent.settings import Settings

    server = http_server("--persona", "analyst", "--require-token")
    monkeypatch.setenv("REMOTE_MCP_TOKEN", server.token)
    write_persona(home, "relay", f'''
description = "Uses a token-protected fal-persona over MCP"
budget_usd = 1.0
tools = ["get_pricing"]
system_prompt = "Relay."
[[mcp_servers]]
name = "remote"
url = "{server.url}"
headers = {{ Authorization = "Bearer ${{REMOTE_MCP_TOKEN}}" }}
tools = ["search_*"]
[[mcp_servers]]
name = "nokey"
url = "{server.url}"
start_timeout_s = 10
''')
    runtime = await asyncio.to_thread(build_runtime, Settings().model_copy(update={"listen": False}),
                                      "relay", source="cli")
    try:
        assert runtime.mcp.status() == {"remote": "up", "nokey": "failed"}
        assert [t.name for t in runtime.runner.tools] == ["get_pricing", "remote_search_models"]
        assert any(n.startswith("MCP server nokey did not start") for n in runtime.notices)
    finally:
        await runtime.aclose()
