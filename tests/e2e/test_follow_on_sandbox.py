"""`agent.core.follow.follow_job` against the sandbox: statuses in order, then one true outcome."""

from __future__ import annotations

import asyncio

import pytest

from agent.core.follow import JobOutcome, JobStatus, follow_job

EP = "fal-ai/flux/dev"


async def _collect(client, endpoint, rid, into: list) -> None:
    async for event in follow_job(client, endpoint, rid, deadline_s=30):
        into.append(event)


async def _until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_follow_reports_statuses_then_the_result(loopback):
    harness = loopback  # (httpx.ASGITransport buffers a whole response, so SSE needs a socket)
    client = harness.toolbox().client
    sub = await client.submit(EP, {"prompt": "a fox"})
    events: list = []
    task = asyncio.create_task(_collect(client, EP, sub.request_id, events))
    await _until(lambda: events, "first status")
    assert isinstance(events[0], JobStatus) and events[0].data["status"] == "IN_QUEUE"
    for _ in range(20):  # the clock is manual: walk it until the job completes
        if task.done():
            break
        await harness.advance(1.0)
        await asyncio.sleep(0.02)
    await asyncio.wait_for(task, 10)
    states = [e.data["status"] for e in events if isinstance(e, JobStatus)]
    assert states[0] == "IN_QUEUE" and states[-1] == "COMPLETED" and "IN_PROGRESS" in states
    outcome = events[-1]
    assert isinstance(outcome, JobOutcome) and outcome.kind == "completed"
    assert outcome.result["images"][0]["url"]
    assert sum(isinstance(e, JobOutcome) for e in events) == 1


async def test_follow_a_cancelled_job_says_cancelled(loopback):
    client = loopback.toolbox().client
    sub = await client.submit(EP, {"prompt": "never mind"})
    events: list = []
    task = asyncio.create_task(_collect(client, EP, sub.request_id, events))
    await _until(lambda: events, "first status")
    cancel = await client.cancel(EP, sub.request_id)
    assert cancel.outcome == "requested"
    for _ in range(10):
        if task.done():
            break
        await loopback.advance(1.0)
        await asyncio.sleep(0.02)
    await asyncio.wait_for(task, 10)
    assert events[-1].kind == "cancelled"


async def test_follow_an_unknown_request_is_lost_not_failed(loopback):
    client = loopback.toolbox().client
    events: list = []
    await asyncio.wait_for(_collect(client, EP, "00000000-0000-0000-0000-000000000000", events), 10)
    assert len(events) == 1 and events[0].kind == "lost" and "404" in events[0].message
