"""The nine tools' behaviour: tags, schemas, readable content, errors, live updates, sync use."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypedDict

import httpx
import pytest
from fal_fakes import DONE_ID, FAILED_ID, QUEUED_ID, FakeFal

from tools import build_fal_tools
from tools.fal import FalClient
from tools.registry import DEFAULT_TOOLS
from tools.registry import TOOL_KINDS as TOOL_KIND

EP = "fal-ai/flux/dev"


@pytest.fixture
def fake() -> FakeFal:
    return FakeFal()


@pytest.fixture
def tools(fake) -> dict[str, Any]:
    client = FalClient(fake.config(), transport=fake.transport())
    return {t.name: t for t in build_fal_tools(client=client)}


def _call(tool, args: dict[str, Any]):
    return tool.invoke({"name": tool.name, "args": args, "id": "c1", "type": "tool_call"})


async def _acall(tool, args: dict[str, Any]):
    return await tool.ainvoke({"name": tool.name, "args": args, "id": "c1", "type": "tool_call"})


def test_names_kinds_and_tags_follow_the_contract(tools):
    assert set(tools) == set(DEFAULT_TOOLS)
    for name, tool in tools.items():
        kind = TOOL_KIND[name]
        assert tool.tags == ["fal", kind] and tool.metadata == {"kind": kind}
        assert tool.response_format == "content_and_artifact"
        assert tool.func is not None and tool.coroutine is not None


def test_every_argument_is_described_with_examples_for_ids(tools):
    for tool in tools.values():
        props = tool.args_schema.model_json_schema().get("properties", {})
        for field, spec in props.items():
            assert len(spec.get("description", "")) > 20, (tool.name, field)
            if field in ("endpoint_id", "request_id"):
                assert spec.get("examples"), (tool.name, field)
    assert "fal-ai/flux/dev" in str(tools["get_queue_status"].args)


def test_build_from_environment_is_lazy(monkeypatch):
    monkeypatch.setenv("FAL_QUEUE_BASE_URL", "http://127.0.0.1:9")
    built = build_fal_tools()
    assert len(built) == 9  # nothing was contacted: port 9 would refuse


async def test_errors_become_readable_content_not_exceptions(fake):
    def handler(request):
        return httpx.Response(403, json={"detail": "User is locked. Reason: Exhausted balance."},
                              headers={"x-fal-request-id": "rq-7"})

    client = FalClient(fake.config(FAL_MAX_RETRIES=0), transport=httpx.MockTransport(handler))
    tools = {t.name: t for t in build_fal_tools(client=client)}
    msg = await _acall(tools["get_queue_status"], {"endpoint_id": EP, "request_id": DONE_ID})
    assert msg.content.startswith("Error:")
    assert "LockedAccountError" in msg.content and "Next:" in msg.content
    # The request id named is the one asked about, not the error response's header.
    assert "top up" in msg.content.lower() and DONE_ID in msg.content and "rq-7" not in msg.content
    err = msg.artifact["error"]
    assert (err["type"], err["status"], err["request_id"]) == ("LockedAccountError", 403, DONE_ID)
    assert set(err) >= {"type", "status", "fal_error_type", "request_id", "message"}


@pytest.mark.parametrize("name, args", [
    ("get_queue_status", {"endpoint_id": "not an id", "request_id": DONE_ID}),
    ("get_queue_result", {"endpoint_id": EP, "request_id": "  "}),
    ("cancel_queue_request", {"endpoint_id": "flux", "request_id": DONE_ID}),
    ("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: -3}}),
    ("estimate_pricing", {"estimate_type": "vibes", "endpoints": {EP: 3}}),
    ("submit_queue_request", {"endpoint_id": EP, "arguments": {}, "priority": "urgent"}),
    ("submit_queue_request", {"endpoint_id": EP, "arguments": {}, "start_timeout_s": 0.5}),
    ("get_pricing", {"endpoint_ids": []}),
])
def test_bad_arguments_answer_error_and_send_nothing(tools, fake, name, args):
    msg = _call(tools[name], args)
    assert str(msg.content).startswith("Error:")
    assert fake.seen == []


def test_failed_request_is_obvious(tools):
    msg = _call(tools["get_queue_result"], {"endpoint_id": EP, "request_id": FAILED_ID})
    assert msg.content.startswith("Error:") and "FAILED" in msg.content
    assert "COMPLETED" in msg.content and "prompt: field required" in msg.content
    assert msg.artifact["failed"] is True
    assert msg.artifact["error"]["detail"]["detail"][0]["loc"] == ["body", "prompt"]


def test_success_result_lists_media(tools):
    msg = _call(tools["get_queue_result"], {"endpoint_id": EP, "request_id": DONE_ID})
    assert "https://example.invalid/a.png" in msg.content
    assert msg.artifact["seed"] == 42


def test_cancel_explains_each_outcome(tools):
    cancel = tools["cancel_queue_request"]
    first = _call(cancel, {"endpoint_id": EP, "request_id": QUEUED_ID})
    assert first.artifact["outcome"] == "requested" and "may still run" in first.content
    again = _call(cancel, {"endpoint_id": EP, "request_id": QUEUED_ID})
    assert again.artifact["outcome"] == "already_completed" and "ALREADY COMPLETED" in again.content
    gone = _call(cancel, {"endpoint_id": EP, "request_id": "no-such-request"})
    assert gone.artifact["outcome"] == "not_found" and "NOT FOUND" in gone.content


def test_search_table_and_cursor(tools, fake):
    msg = _call(tools["search_models"], {"query": "flux", "limit": 1})
    lines = msg.content.splitlines()
    assert lines[0] == "endpoint_id | name | category | status"
    assert lines[1] == "fal-ai/flux/dev | FLUX.1 [dev] | text-to-image | active"
    assert "cursor='Mg=='" in msg.content
    assert fake.seen[-1].url.params["limit"] == "1"


def test_submit_status_pricing_estimate_jwks_content(tools, fake):
    sub = _call(tools["submit_queue_request"], {"endpoint_id": EP, "arguments": {"prompt": "x"},
                                                "webhook_url": "https://h.example/w"})
    rid = sub.artifact["request_id"]
    assert rid in sub.content and fake.seen[-1].url.params["fal_webhook"] == "https://h.example/w"
    st = _call(tools["get_queue_status"], {"endpoint_id": EP, "request_id": rid})
    assert "IN_PROGRESS" in st.content and st.artifact["status"] == "IN_PROGRESS"
    price = _call(tools["get_pricing"], {"endpoint_ids": [EP]})
    assert price.content == "fal-ai/flux/dev: 0.025 USD per image"
    est = _call(tools["estimate_pricing"], {"estimate_type": "unit_price", "endpoints": {EP: 4}})
    assert "0.1 USD" in est.content and est.artifact["total_cost"] == 0.1
    jwks = _call(tools["get_webhook_jwks"], {})
    assert "Ed25519" in jwks.content and jwks.artifact["keys"][0]["crv"] == "Ed25519"


async def test_stream_reports_each_update_as_a_custom_event(tools):
    tool = tools["stream_queue_status"]
    events = []
    async for ev in tool.astream_events({"endpoint_id": EP, "request_id": QUEUED_ID},
                                        version="v2"):
        if ev["event"] == "on_custom_event" and ev["name"] == "fal_queue_status":
            events.append(ev["data"])
    assert [e["status"] for e in events] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert all(e["endpoint_id"] == EP for e in events)


async def test_stream_reports_through_the_langgraph_stream_writer(tools):
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        out: str

    async def node(state: State) -> State:
        msg = await tools["stream_queue_status"].ainvoke(
            {"name": "stream_queue_status", "id": "c9", "type": "tool_call",
             "args": {"endpoint_id": EP, "request_id": QUEUED_ID}})
        return {"out": msg.content}

    graph = StateGraph(State)
    graph.add_node("n", node)
    graph.add_edge(START, "n")
    graph.add_edge("n", END)
    chunks = [c async for c in graph.compile().astream({"out": ""}, stream_mode="custom")]
    assert [c["data"]["status"] for c in chunks] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert all(c["type"] == "fal_queue_status" for c in chunks)


def test_stream_reports_events_on_the_sync_path_too(tools):
    from langchain_core.callbacks import BaseCallbackHandler

    class Grab(BaseCallbackHandler):
        def __init__(self) -> None:
            self.data: list[dict] = []

        def on_custom_event(self, name, data, **kw):
            if name == "fal_queue_status":
                self.data.append(data)

    grab = Grab()
    msg = tools["stream_queue_status"].invoke(
        {"name": "stream_queue_status", "id": "c2", "type": "tool_call",
         "args": {"endpoint_id": EP, "request_id": QUEUED_ID}}, config={"callbacks": [grab]})
    assert [d["status"] for d in grab.data] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert "Final:" in msg.content and msg.artifact["final"]["status"] == "COMPLETED"


async def test_stream_timeout_returns_last_status(fake):
    never = asyncio.Event()

    class Stuck(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield (b'data: {"status": "IN_QUEUE", "queue_position": 4, "request_id": "r"}\n\n')
            await never.wait()
            yield b""

    def handler(request):
        return httpx.Response(200, stream=Stuck(), headers={"content-type": "text/event-stream"})

    client = FalClient(fake.config(), transport=httpx.MockTransport(handler))
    tool = {t.name: t for t in build_fal_tools(client=client)}["stream_queue_status"]
    msg = await _acall(tool, {"endpoint_id": EP, "request_id": QUEUED_ID, "timeout_s": 0.2})
    assert msg.content.startswith("Error:") and "position 4" in msg.content
    assert msg.artifact["error"]["type"] == "FalTimeoutError"
    assert msg.artifact["last_status"]["queue_position"] == 4


async def test_sync_call_works_while_a_loop_runs_in_the_calling_thread(tools):
    msg = tools["get_queue_status"].invoke({"endpoint_id": EP, "request_id": DONE_ID})
    assert "COMPLETED" in msg


def test_sync_calls_from_many_threads(tools):
    out: list[str] = []

    def worker():
        for _ in range(3):
            out.append(tools["get_queue_result"].invoke(
                {"endpoint_id": EP, "request_id": DONE_ID}))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(out) == 12 and all("example.invalid/a.png" in o for o in out)
