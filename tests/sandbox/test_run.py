"""The synchronous run host (`/_run`, fal.run) in process, on a manual clock."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sandbox.jobs import COMPLETED, IN_QUEUE
from tests.sandbox.conftest import KEY, make_app, submit

RUN = "/_run/fal-ai/flux/dev"


async def _until(predicate, what: str, bound: int = 2000):
    """Yield to the app until `predicate()` holds (a bounded number of loop turns)."""
    for _ in range(bound):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def _parked_run(client, state, path=RUN, **kwargs):
    """Start a run, wait until its job exists, and check the answer is held by the manual clock."""
    before = set(state.queue.jobs)
    task = asyncio.create_task(client.post(path, **kwargs))
    await _until(lambda: set(state.queue.jobs) - before or task.done(), "the run's job is queued")
    assert not task.done(), task.result().text
    (rid,) = set(state.queue.jobs) - before
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done()  # a manual clock only moves when told: the run waits for it
    return task, state.queue.jobs[rid]


async def test_run_held_until_clock_advanced_then_returns_output_unchanged(client, state):
    task, job = await _parked_run(client, state, json={"prompt": "a lighthouse", "seed": 5})
    assert job.state == IN_QUEUE
    state.clock.advance(10)  # a bare clock move: the parked run wakes and completes its own job
    r = await asyncio.wait_for(task, 5)
    assert r.status_code == 200 and job.state == COMPLETED
    assert r.json() == job.result_body and r.json()["seed"] == 5
    assert r.headers["x-fal-request-id"] == job.request_id
    # The run is a queue job: status and result see it under its request id.
    status = await client.get(f"/fal-ai/flux/requests/{job.request_id}/status")
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    assert (await client.get(f"/fal-ai/flux/requests/{job.request_id}")).json() == r.json()


async def test_run_waits_only_as_long_as_the_job(client, state):
    task, job = await _parked_run(client, state, json={"prompt": "x"})
    state.clock.advance(0.5)  # only the queue delay: the job starts but cannot finish
    await _until(lambda: job.state != IN_QUEUE, "the job starts")
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done()
    state.clock.advance(job.run_s)
    assert (await asyncio.wait_for(task, 5)).status_code == 200


async def test_run_bad_input_gets_the_queue_422_shape(client, state):
    task, job = await _parked_run(client, state, json={"prompt": 5, "num_images": "two"})
    state.clock.advance(5)
    r = await asyncio.wait_for(task, 5)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list) and {tuple(e["loc"]) for e in detail} >= {("body", "prompt")}
    assert all({"loc", "msg", "type"} <= set(e) for e in detail)
    # Exactly what the queue's result call replays for the same input.
    sub = await submit(client, body={"prompt": 5, "num_images": "two"})
    state.clock.advance(5)
    queued = await client.get(sub["response_url"])
    assert queued.status_code == 422 and queued.json() == r.json()


async def test_run_bad_json_and_unknown_app_answer_at_once(client):
    r = await client.post(RUN, content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = await client.post("/_run/fal-ai/no-such-model", json={"prompt": "x"})
    assert r.status_code == 404 and r.json()["detail"] == 'Application "no-such-model" not found'
    r = await client.post("/_run/fal-ai/flux/dev/stream", json={"prompt": "x"})
    assert r.status_code == 404 and "streaming" in r.json()["detail"]
    assert (await client.put(RUN, json={})).status_code == 405


async def test_run_auth_errors_match_the_queue():
    app = make_app(locked_key_ids=frozenset({"locked"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        r = await c.post(RUN, json={"prompt": "x"}, headers={"Authorization": "Key locked:s"})
        q = await c.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers={"Authorization": "Key locked:s"})
    assert r.status_code == q.status_code == 403 and r.json() == q.json()
    await app.state.sandbox.aclose()


async def test_run_faults_use_the_run_op(client, state):
    state.faults.add("rate_limit", times=None, ops=["submit", "result"])
    task, _ = await _parked_run(client, state, json={"prompt": "x"})  # submit/result faults miss runs
    state.clock.advance(10)
    assert (await asyncio.wait_for(task, 5)).status_code == 200
    state.faults.clear()
    state.faults.add("rate_limit", times=1, retry_after=3, ops=["run"])
    r = await client.post(RUN, json={"prompt": "x"})
    assert r.status_code == 429 and r.headers["retry-after"] == "3" and r.json()["error_type"] == "rate_limited"
    assert (await client.post("/fal-ai/flux/dev", json={"prompt": "x"})).status_code == 200  # the queue is not hit
    state.faults.add("server_error", times=1, ops=["run"])
    r = await client.post(RUN, json={"prompt": "x"})
    assert r.status_code == 503 and r.headers["x-fal-error-type"] == "runner_disconnected"
    state.faults.add("rate_limit", times=1)  # no ops: every op, runs included
    assert (await client.post(RUN, json={"prompt": "x"})).status_code == 429


async def test_run_malformed_json_and_delay_faults(client, state):
    state.faults.add("malformed_json", times=1, ops=["run"])
    task, _ = await _parked_run(client, state, json={"prompt": "x"})
    state.clock.advance(10)
    r = await asyncio.wait_for(task, 5)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    state.faults.add("delay", times=1, delay_s=30, ops=["run"])
    n = len(state.queue.jobs)
    task = asyncio.create_task(client.post(RUN, json={"prompt": "x"}))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done() and len(state.queue.jobs) == n  # the delay strikes before the job is queued
    state.clock.advance(30)
    await _until(lambda: len(state.queue.jobs) == n + 1, "the delayed run queues its job")
    state.clock.advance(10)
    assert (await asyncio.wait_for(task, 5)).status_code == 200


async def test_run_start_timeout_gives_504_that_fal_client_never_retries():
    app = make_app(concurrency_limit=1)
    state = app.state.sandbox
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s", headers=KEY) as c:
        await submit(c, "fal-ai/veo3")  # holds the key's only slot for a long time
        state.clock.advance(1)
        task, job = await _parked_run(c, state, json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": "2"})
        state.clock.advance(3)
        r = await asyncio.wait_for(task, 5)
    assert r.status_code == 504 and r.headers["x-fal-request-timeout-type"] == "user"
    assert r.json()["error_type"] == "request_timeout"
    await state.aclose()


async def test_run_cancelled_through_the_queue_and_get_without_body(client, state):
    task, job = await _parked_run(client, state, json={"prompt": "x"})
    r = await client.put(f"/fal-ai/flux/requests/{job.request_id}/cancel")
    assert r.status_code == 202
    r = await asyncio.wait_for(task, 5)
    assert r.status_code == 400 and r.json()["error_type"] == "request_cancelled"
    # fal_client.run(method="GET") sends no body: it counts as {} (here: a missing prompt).
    get = asyncio.create_task(client.get("/_run/fal-ai/flux/schnell"))
    await _until(lambda: any(j.endpoint.endpoint_id == "fal-ai/flux/schnell" for j in state.queue.jobs.values())
                 or get.done(), "the GET run is queued")
    state.clock.advance(5)
    r = await asyncio.wait_for(get, 5)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "prompt"]


async def test_reset_answers_a_parked_run(client, state):
    task, _ = await _parked_run(client, state, json={"prompt": "x"})
    state.reset()
    r = await asyncio.wait_for(task, 5)
    assert r.status_code == 503 and "reset" in r.json()["detail"]
