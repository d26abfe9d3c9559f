"""The queue lifecycle, driven by the manual clock: no real sleeping anywhere."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import make_app, submit

URL_KEYS = {"response_url", "status_url", "cancel_url"}


async def test_full_lifecycle(client, state):
    sub = await submit(client)
    rid = sub["request_id"]
    assert sub["status"] == "IN_QUEUE" and sub["queue_position"] == 0
    assert sub["status_url"] == f"http://sandbox.test/fal-ai/flux/requests/{rid}/status"
    assert sub["response_url"] == f"http://sandbox.test/fal-ai/flux/requests/{rid}"
    assert sub["cancel_url"].endswith(f"/fal-ai/flux/requests/{rid}/cancel")

    r = await client.get(sub["status_url"])
    assert r.status_code == 202 and r.headers["x-fal-request-id"] == rid
    body = r.json()
    assert body["status"] == "IN_QUEUE" and body["queue_position"] == 0
    assert body["logs"] is None and body["metrics"] == {} and URL_KEYS <= set(body)

    await state.advance(0.6)  # past the queue delay: a runner picks it up
    r = await client.get(sub["status_url"], params={"logs": 1})
    body = r.json()
    assert r.status_code == 202 and body["status"] == "IN_PROGRESS"
    assert "queue_position" not in body
    first = len(body["logs"])
    await state.advance(1.5)
    logs = (await client.get(sub["status_url"], params={"logs": 1})).json()["logs"]
    assert len(logs) > first, "IN_PROGRESS accumulates log lines"
    assert {"message", "level", "source", "timestamp"} <= set(logs[0])

    await state.advance(10)
    r = await client.get(sub["status_url"])
    body = r.json()
    assert r.status_code == 200 and body["status"] == "COMPLETED"
    assert body["metrics"]["inference_time"] > 0
    assert body["error"] is None and body["error_type"] is None
    assert "logs" in body and body["logs"] is None

    r = await client.get(sub["response_url"])
    assert r.status_code == 200 and r.headers["x-fal-request-id"] == rid
    out = r.json()
    assert out["images"][0]["url"].startswith("http://sandbox.test/_media/")
    assert out["images"][0]["content_type"] == "image/png"


async def test_positions_advance_under_concurrency_limit():
    app = make_app(concurrency_limit=1)
    state = app.state.sandbox
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s",
                                 headers={"Authorization": "Key a:b"}) as client:
        subs = [await submit(client) for _ in range(3)]
        assert [s["queue_position"] for s in subs] == [0, 1, 2]
        await state.advance(0.6)
        statuses = [(await client.get(s["status_url"])).json() for s in subs]
        assert statuses[0]["status"] == "IN_PROGRESS"
        assert [s.get("queue_position") for s in statuses[1:]] == [0, 1]
        await state.advance(4.0)  # flux/dev runs ~3.2 s +/- 10%
        statuses = [(await client.get(s["status_url"])).json() for s in subs]
        assert [s["status"] for s in statuses] == ["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]
        assert statuses[2]["queue_position"] == 0
        # Another key has its own concurrency bucket: it starts at once.
        other = (await client.post("/fal-ai/flux/dev", json={"prompt": "x"},
                                   headers={"Authorization": "Key other:key"})).json()
        await state.advance(0.6)
        assert (await client.get(other["status_url"])).json()["status"] == "IN_PROGRESS"
    await state.aclose()


@pytest.mark.parametrize("value,on", [("1", True), ("true", True), ("True", True), ("yes", True),
                                      ("0", False), ("false", False), (None, False)])
async def test_logs_flag_variants(client, state, value, on):
    sub = await submit(client)
    await state.advance(2)
    params = {} if value is None else {"logs": value}
    logs = (await client.get(sub["status_url"], params=params)).json()["logs"]
    assert (isinstance(logs, list) and len(logs) > 0) if on else logs is None


async def test_url_forms(client, state):
    sub = await submit(client, "fal-ai/flux/dev")
    rid = sub["request_id"]
    forms = [f"/fal-ai/flux/requests/{rid}/status", f"/fal-ai/flux/requests/{rid}/status/",
             f"/fal-ai/flux/dev/requests/{rid}/status", f"/fal-ai/flux/dev/requests/{rid}/status/"]
    for form in forms:
        r = await client.get(form)
        assert r.status_code == 202, form
        assert r.json()["status_url"].endswith(f"/fal-ai/flux/requests/{rid}/status")
    # A request id under another app is not found.
    assert (await client.get(f"/fal-ai/recraft-v3/requests/{rid}/status")).status_code == 404
    await state.advance(20)
    assert (await client.get(f"/fal-ai/flux/dev/requests/{rid}/")).status_code == 200
    # Trailing slash on submit, too.
    r = await client.post("/fal-ai/flux/schnell/", json={"prompt": "p"})
    assert r.status_code == 200 and "/fal-ai/flux/requests/" in r.json()["status_url"]


@pytest.mark.parametrize("endpoint", ["workflows/fal-ai/sdxl-refiner-pipeline", "comfy/fal-ai/sdxl-turbo-graph"])
async def test_namespaced_ids_keep_three_segments(client, endpoint):
    sub = await submit(client, endpoint)
    assert f"/{endpoint}/requests/{sub['request_id']}/status" in sub["status_url"]
    assert (await client.get(sub["status_url"])).status_code == 202


async def test_bad_input_completes_with_error_and_replays_422(client, state):
    sub = await submit(client, body={"num_images": 2})  # no prompt
    await state.advance(5)
    status = (await client.get(sub["status_url"])).json()
    assert status["status"] == "COMPLETED"
    assert status["error"] and status["error_type"] == "validation_error"
    r = await client.get(sub["response_url"])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "prompt"] and detail[0]["type"] == "missing" and "msg" in detail[0]


async def test_type_and_range_errors_listed(client, state):
    sub = await submit(client, body={"prompt": 3, "num_images": 9, "image_size": "huge"})
    await state.advance(5)
    detail = (await client.get(sub["response_url"])).json()["detail"]
    assert {tuple(d["loc"]) for d in detail} == {("body", "prompt"), ("body", "num_images"), ("body", "image_size")}


async def test_cancel_outcomes(client, state):
    queued = await submit(client)
    r = await client.put(queued["cancel_url"])
    assert r.status_code == 202 and r.json() == {"status": "CANCELLATION_REQUESTED"}
    status = (await client.get(queued["status_url"])).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "request_cancelled"
    r = await client.put(queued["cancel_url"])
    assert r.status_code == 400 and r.json()["status"] == "ALREADY_COMPLETED"

    running = await submit(client)
    await state.advance(1)
    assert (await client.get(running["status_url"])).json()["status"] == "IN_PROGRESS"
    assert (await client.put(running["cancel_url"])).status_code == 202
    assert (await client.get(running["response_url"])).status_code == 400

    r = await client.put("/fal-ai/flux/requests/00000000-0000-0000-0000-000000000000/cancel")
    assert r.status_code == 404 and r.json()["status"] == "NOT_FOUND"
    assert r.headers["x-fal-error-type"] == "request_not_found"
    assert (await client.get(running["cancel_url"])).status_code == 405  # cancel is PUT


async def test_result_before_completion_and_unknown(client):
    sub = await submit(client)
    r = await client.get(sub["response_url"])
    assert r.status_code == 400 and r.json()["error_type"] == "request_not_completed"
    r = await client.get("/fal-ai/flux/requests/nope/status")
    assert r.status_code == 404 and r.json()["error_type"] == "request_not_found"


async def test_results_expire_after_retention(state, client):
    state.config.retention_s = 60
    sub = await submit(client)
    await state.advance(10)
    assert (await client.get(sub["response_url"])).status_code == 200
    await state.advance(61)
    assert (await client.get(sub["response_url"])).status_code == 404


async def test_start_timeout_expires_queued_request(client, state):
    state.config.concurrency_limit = 1
    await submit(client)  # occupies the only slot for ~3 s
    late = await submit(client, headers={"X-Fal-Request-Timeout": "1.5"})
    await state.advance(2)
    r = await client.get(late["response_url"])
    assert r.status_code == 504 and r.headers["x-fal-request-timeout-type"] == "user"
    assert r.json()["error_type"] == "request_timeout"


async def test_low_priority_waits_behind_normal(client, state):
    state.config.concurrency_limit = 1
    low = await submit(client, headers={"X-Fal-Queue-Priority": "low"})
    normal = await submit(client)
    assert normal["queue_position"] == 0
    pos = (await client.get(low["status_url"])).json()["queue_position"]
    assert pos == 1
    r = await client.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers={"X-Fal-Queue-Priority": "urgent"})
    assert r.status_code == 422
