"""`fal-persona mcp` driven by the official `mcp` client, over stdio and streamable HTTP, on the
built-in sandbox (no keys): the tool list matches the chat's tools, calls pass the chat's guard,
spending needs approval (elicitation or --allow-spend, the budget still holding), and every
call is in the transcript under source `mcp` with the client's name."""

from __future__ import annotations

import asyncio

import pytest
from conftest import (
    CLIENT_NAME,
    WAIT_S,
    http_session,
    results_logged,
    stdio_session,
    transcript_events,
    transcript_sessions,
    write_persona,
)

from agent.mcp.bridge import input_schema
from tools.catalog import build_fal_tools
from tools.registry import DEFAULT_TOOLS, TOOL_KINDS

EP = "fal-ai/flux/schnell"
SUBMIT = {"endpoint_id": EP, "arguments": {"prompt": "a red fox"}}
pytestmark = pytest.mark.timeout(180)


def _text(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def test_stdio_lists_the_producers_tools_as_the_chat_sees_them(home):
    chat_tools = {t.name: t for t in build_fal_tools()}
    async with asyncio.timeout(WAIT_S):
        async with stdio_session(home) as session:
            listed = (await session.list_tools()).tools
    assert [t.name for t in listed] == list(DEFAULT_TOOLS)
    for tool in listed:
        lc = chat_tools[tool.name]
        assert tool.description == lc.description
        assert tool.inputSchema == input_schema(lc)
        assert tool.annotations.readOnlyHint is (TOOL_KINDS[tool.name] == "read")
        assert tool.annotations.destructiveHint is (tool.name == "cancel_queue_request")
    submit = next(t for t in listed if t.name == "submit_queue_request")
    assert {"endpoint_id", "arguments"} <= set(submit.inputSchema["required"])


async def test_the_analysts_list_has_no_submit_or_cancel_and_a_submit_is_out_of_scope(home):
    async with asyncio.timeout(WAIT_S):
        async with stdio_session(home, "--persona", "analyst", "--allow-spend") as session:
            names = [t.name for t in (await session.list_tools()).tools]
            refused = await session.call_tool("submit_queue_request", SUBMIT)
    assert names and "submit_queue_request" not in names and "cancel_queue_request" not in names
    assert refused.isError
    assert _text(refused).startswith("Error: submit_queue_request is outside the scope of the analyst persona")


async def test_stdio_search_works_and_a_submit_without_approval_is_refused_and_logged(home):
    async with asyncio.timeout(WAIT_S):
        async with stdio_session(home) as session:
            found = await session.call_tool("search_models", {"query": "flux", "limit": 5})
            refused = await session.call_tool("submit_queue_request", SUBMIT)
    assert not found.isError and EP in _text(found)
    assert found.structuredContent and found.structuredContent["models"]
    assert refused.isError
    text = _text(refused)
    assert text.startswith("Rejected by the user") and "--allow-spend" in text and "was not run" in text
    [(session_row, events)] = transcript_events(home, "mcp")
    assert session_row["user"] == CLIENT_NAME and session_row["persona"] == "producer"
    kinds = [(e["kind"], e["data"].get("name")) for e in events]
    assert ("tool_call", "search_models") in kinds and ("tool_result", "search_models") in kinds
    assert ("approval", "submit_queue_request") in kinds and ("tool_error", "submit_queue_request") in kinds
    approval = next(e for e in events if e["kind"] == "approval")
    assert approval["data"]["decision"] == "reject"
    # Only the client's session: the server's own (unused) runner leaves none behind.
    assert [s["events"] for s in transcript_sessions(home, "mcp")] == [len(events)]


async def test_http_allow_spend_submits_a_sandbox_job_and_logs_it(home, http_server):
    server = http_server("--allow-spend")
    async with asyncio.timeout(WAIT_S):
        async with http_session(server.url) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            found = await session.call_tool("search_models", {"query": "flux"})
            submitted = await session.call_tool("submit_queue_request", SUBMIT)
            request_id = submitted.structuredContent["request_id"]
            status = await session.call_tool("get_queue_status", {"endpoint_id": EP, "request_id": request_id})
    assert names == list(DEFAULT_TOOLS)
    assert not found.isError and EP in _text(found)
    assert not submitted.isError and request_id in _text(submitted)
    assert not status.isError and request_id in _text(status)  # the sandbox knows the job
    [(session_row, events)] = results_logged(home, "mcp", 3)  # the server still runs
    assert session_row["user"] == CLIENT_NAME
    result = next(e for e in events if e["kind"] == "tool_result" and e["data"]["name"] == "submit_queue_request")
    assert result["data"]["artifact"]["request_id"] == request_id
    assert result["data"]["cost_usd"] is not None  # priced by the guard, charged to the budget
    approval = next(e for e in events if e["kind"] == "approval")
    assert approval["data"]["decision"] == "approve"


async def test_http_without_allow_spend_refuses_a_submit(home, http_server):
    server = http_server()
    async with asyncio.timeout(WAIT_S):
        async with http_session(server.url) as session:
            refused = await session.call_tool("submit_queue_request", SUBMIT)
    assert refused.isError and "--allow-spend" in _text(refused)
    [(_, events)] = results_logged(home, "mcp", 1)
    assert not any(e["kind"] == "tool_result" for e in events)


@pytest.mark.parametrize("approve", [True, False])
async def test_elicitation_decides_a_submit(home, approve):
    from mcp.types import ElicitResult

    asked: list[str] = []

    async def answer(context, params):
        asked.append(params.message)
        return ElicitResult(action="accept", content={"approve": approve})

    async with asyncio.timeout(WAIT_S):
        async with stdio_session(home, elicitation=answer) as session:
            result = await session.call_tool("submit_queue_request", SUBMIT)
    assert len(asked) == 1 and "submit_queue_request" in asked[0] and "Cost of this call" in asked[0]
    if approve:
        assert not result.isError and result.structuredContent["request_id"]
    else:
        assert result.isError and _text(result).startswith("Rejected by the user (declined)")


async def test_the_budget_holds_with_allow_spend(home):
    write_persona(home, "tight", '''
description = "A tiny budget"
budget_usd = 0.0001
tools = ["search_models", "get_pricing", "estimate_pricing", "submit_queue_request"]
system_prompt = "Spend almost nothing."
''')
    async with asyncio.timeout(WAIT_S):
        async with stdio_session(home, "--persona", "tight", "--allow-spend") as session:
            refused = await session.call_tool("submit_queue_request", SUBMIT)
    assert refused.isError
    assert "more than the $0.0001 left" in _text(refused) and "nothing was submitted" in _text(refused)


async def test_bad_arguments_come_back_as_a_tool_error_with_the_agents_text(home):
    async with asyncio.timeout(WAIT_S):
        async with stdio_session(home, "--persona", "analyst") as session:
            bad = await session.call_tool("get_pricing", {"endpoint_ids": "not-a-list"})
            unknown = await session.call_tool("no_such_tool", {})
    assert bad.isError and _text(bad).startswith("Error: invalid arguments")
    assert unknown.isError and _text(unknown).startswith("Error: there is no tool named 'no_such_tool'")
