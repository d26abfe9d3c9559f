"""The SSE status stream over real loopback HTTP, driven by the manual clock."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread


@pytest.fixture
def sb():
    with start_in_thread(config=SandboxConfig(manual_clock=True, sse_ping_interval_s=2.0)) as running:
        yield running


def events(response):
    """Yield ("data", obj) or ("ping", None) per SSE block; checks the wire framing."""
    block: list[str] = []
    for line in response.iter_lines():
        if line:
            block.append(line)
            continue
        assert len(block) == 1, block
        if block[0] == ": ping":
            yield "ping", None
        else:
            assert block[0].startswith("data: ")
            yield "data", json.loads(block[0][len("data: "):])
        block = []
    assert not block


def test_events_pings_and_close_after_completed(sb):
    sub = httpx.post(f"{sb.url}/fal-ai/flux/dev", json={"prompt": "x"}).json()
    timeout = httpx.Timeout(10.0)
    with httpx.stream("GET", sub["status_url"] + "/stream", params={"logs": "1"}, timeout=timeout) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        it = events(r)
        kind, first = next(it)
        assert kind == "data" and first["status"] == "IN_QUEUE" and first["queue_position"] == 0
        sb.advance(1.0)
        kind, second = next(it)
        assert second["status"] == "IN_PROGRESS" and isinstance(second["logs"], list)
        sb.advance(1.5)  # past the 2 s ping interval, and more log lines appear
        seen = [next(it), next(it)]
        assert ("ping", None) in seen
        later = [e for k, e in seen if k == "data"][0]
        assert len(later["logs"]) > len(second["logs"])
        sb.advance(10)
        rest = list(it)  # ends: the server closes the stream after COMPLETED
    data = [e for k, e in rest if k == "data"]
    assert data[-1]["status"] == "COMPLETED" and data[-1]["metrics"]["inference_time"] > 0
    assert all(d["request_id"] == sub["request_id"] for d in data)


def test_stream_of_completed_request_sends_one_event_and_closes(sb):
    sub = httpx.post(f"{sb.url}/fal-ai/flux/schnell", json={"prompt": "x"}).json()
    sb.advance(10)
    with httpx.stream("GET", sub["status_url"] + "/stream", timeout=10) as r:
        got = list(events(r))
    assert got == [("data", got[0][1])] and got[0][1]["status"] == "COMPLETED"


def test_injected_drop_ends_stream_before_completed(sb):
    sub = httpx.post(f"{sb.url}/fal-ai/flux/dev", json={"prompt": "x"}).json()
    r = httpx.post(f"{sb.url}/_sandbox/faults", json={"kind": "sse_drop", "after_events": 2})
    assert r.status_code == 201
    with httpx.stream("GET", sub["status_url"] + "/stream", timeout=10) as r:
        it = events(r)
        assert next(it)[1]["status"] == "IN_QUEUE"
        sb.advance(1.0)
        assert next(it)[1]["status"] == "IN_PROGRESS"
        rest = list(it)
    assert all(k == "ping" or e["status"] != "COMPLETED" for k, e in rest)


def test_cancel_wakes_stream(sb):
    sub = httpx.post(f"{sb.url}/fal-ai/flux/dev", json={"prompt": "x"}).json()
    with httpx.stream("GET", sub["status_url"] + "/stream", timeout=10) as r:
        it = events(r)
        assert next(it)[1]["status"] == "IN_QUEUE"
        assert httpx.put(sub["cancel_url"]).status_code == 202
        kind, last = next(it)
        assert last["status"] == "COMPLETED" and last["error_type"] == "request_cancelled"
        assert list(it) == []


def test_stream_unknown_request_404(sb):
    r = httpx.get(f"{sb.url}/fal-ai/flux/requests/missing/status/stream")
    assert r.status_code == 404 and r.json()["error_type"] == "request_not_found"
