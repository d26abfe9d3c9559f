"""Fault injection, each kind, set from Python and over HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.sandbox.conftest import submit


async def test_rate_limit_with_retry_after_then_recovers(client):
    r = await client.post("/_sandbox/faults", json={"kind": "rate_limit", "times": 2, "retry_after": 7,
                                                    "endpoint": "fal-ai/flux"})
    assert r.status_code == 201
    for _ in range(2):
        r = await client.post("/fal-ai/flux/dev", json={"prompt": "x"})
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.headers["x-fal-error-type"] == "rate_limited" and "x-fal-request-id" in r.headers
    assert (await client.post("/fal-ai/flux/dev", json={"prompt": "x"})).status_code == 200
    assert (await client.get("/_sandbox/faults")).json()["faults"] == []


async def test_fault_scoped_to_endpoint(client, state):
    state.faults.add("rate_limit", endpoint="fal-ai/veo3", times=None)
    assert (await client.post("/fal-ai/flux/dev", json={"prompt": "x"})).status_code == 200
    assert (await client.post("/fal-ai/veo3", json={"prompt": "x"})).status_code == 429
    assert (await client.delete("/_sandbox/faults")).json()["cleared"] == 1
    assert (await client.post("/fal-ai/veo3", json={"prompt": "x"})).status_code == 200


async def test_burst_of_5xx_on_status_only(client, state):
    sub = await submit(client)
    state.faults.add("server_error", times=3, status=502, ops=["status"])
    codes = [(await client.get(sub["status_url"])).status_code for _ in range(4)]
    assert codes == [502, 502, 502, 202]


async def test_ingress_style_5xx_has_no_request_id(client, state):
    state.faults.add("server_error", times=1, status=503, ingress=True)
    r = await client.post("/fal-ai/flux/dev", json={"prompt": "x"})
    assert r.status_code == 503 and "nginx" in r.text and "x-fal-request-id" not in r.headers


async def test_platform_faults_use_platform_shape(client, state):
    state.faults.add("rate_limit", times=1, ops=["platform"])
    r = await client.get("/v1/models")
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"


async def test_delay_holds_answer_until_clock_moves(client, state):
    sub = await submit(client)
    state.faults.add("delay", times=1, delay_s=30, ops=["status"])
    task = asyncio.create_task(client.get(sub["status_url"]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    state.clock.advance(10)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    state.clock.advance(25)
    r = await asyncio.wait_for(task, 5)
    assert r.status_code in (200, 202)


async def test_malformed_json(client, state):
    sub = await submit(client)
    state.faults.add("malformed_json", times=1, ops=["status"])
    r = await client.get(sub["status_url"])
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert (await client.get(sub["status_url"])).json()["status"] == "IN_QUEUE"


@pytest.mark.parametrize("fault", [{"kind": "nope"}, {"kind": "delay", "ops": ["bogus"]},
                                   {"kind": "server_error", "status": 404}, {"kind": "rate_limit", "times": 0},
                                   {"kind": "webhook_fail", "mode": "sideways"}, {"times": 1}])
async def test_invalid_fault_specs_422(client, fault):
    r = await client.post("/_sandbox/faults", json=fault)
    assert r.status_code == 422 and r.json()["detail"]


async def test_clear_one_fault_and_reset(client, state):
    f = (await client.post("/_sandbox/faults", json={"kind": "rate_limit", "times": None})).json()
    assert (await client.delete(f"/_sandbox/faults/{f['id']}")).json()["cleared"] == 1
    assert (await client.delete(f"/_sandbox/faults/{f['id']}")).status_code == 404
    await submit(client)
    snap = (await client.post("/_sandbox/reset")).json()
    assert snap["jobs"] == 0 and snap["faults"] == []


async def test_clock_controls_over_http(client):
    before = (await client.get("/_sandbox/state")).json()
    assert before["manual"] is True
    after = (await client.post("/_sandbox/clock/advance", json={"seconds": 12.5})).json()
    assert after["now"] == pytest.approx(before["now"] + 12.5)
    fast = (await client.post("/_sandbox/clock/speed", json={"speed": 20})).json()
    assert fast["manual"] is False and fast["speed"] == 20
    assert (await client.post("/_sandbox/clock/manual")).json()["manual"] is True
