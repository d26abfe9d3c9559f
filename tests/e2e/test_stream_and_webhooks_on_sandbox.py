"""stream_queue_status live over SSE (every update reported as a custom event), and the webhook
flow: submit with a webhook URL, receive the signed delivery, verify it with tools.webhooks
against the keys get_webhook_jwks returns."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from e2e_support import EP, Harness, StatusEvents, WebhookReceiver

from tools.webhooks import JwksCache, WebhookVerificationError, parse_jwks, verify_webhook


async def _submit(box, endpoint: str = EP, **arguments) -> str:
    msg = await box.call("submit_queue_request", endpoint_id=endpoint,
                         arguments=arguments or {"prompt": "a red fox"})
    assert not msg.content.startswith("Error:"), msg.content
    return msg.artifact["request_id"]


async def test_stream_reports_every_update_and_returns_completed(loopback: Harness):
    box = loopback.toolbox()
    rid = await _submit(box)
    events = StatusEvents()
    task = asyncio.create_task(box.call("stream_queue_status", callbacks=[events],
                                        endpoint_id=EP, request_id=rid, timeout_s=20))
    await events.wait_for(lambda ev: len(ev) >= 1)
    first = events.events[0]
    assert first["status"] == "IN_QUEUE" and first["queue_position"] == 0
    assert first["endpoint_id"] == EP and first["request_id"] == rid

    await loopback.advance(0.6)  # a runner picks it up
    await events.wait_for(lambda ev: ev[-1]["status"] == "IN_PROGRESS")
    started_logs = len(events.events[-1]["logs"])
    await loopback.advance(1.5)  # more log lines are printed
    await events.wait_for(lambda ev: len(ev[-1]["logs"] or []) > started_logs)
    assert not task.done()

    await loopback.advance(5)
    msg = await asyncio.wait_for(task, 10)
    updates = msg.artifact["updates"]
    assert updates == events.events  # every update the tool saw was reported, in order
    assert msg.artifact["final"]["status"] == "COMPLETED" and updates[-1] == msg.artifact["final"]
    assert events.statuses()[0] == "IN_QUEUE" and "IN_PROGRESS" in events.statuses()
    assert events.statuses().count("COMPLETED") == 1
    assert msg.content.startswith(f"{len(updates)} update(s). Final:") and "COMPLETED" in msg.content


async def test_stream_of_a_finished_request_returns_at_once(sandbox: Harness):
    box = sandbox.toolbox()
    rid = await _submit(box, "fal-ai/flux/schnell")
    await sandbox.advance(5)
    events = StatusEvents()
    msg = await box.call("stream_queue_status", callbacks=[events], endpoint_id="fal-ai/flux/schnell",
                         request_id=rid, timeout_s=10)
    assert events.statuses() == ["COMPLETED"]
    assert msg.artifact["final"]["status"] == "COMPLETED"
    assert msg.artifact["final"]["metrics"]["inference_time"] > 0


async def test_stream_dropped_halfway_reconnects_and_completes(loopback: Harness):
    box = loopback.toolbox()
    rid = await _submit(box)
    loopback.state.faults.add("sse_drop", ops=["stream"], after_events=2, times=1)
    events = StatusEvents()
    task = asyncio.create_task(box.call("stream_queue_status", callbacks=[events],
                                        endpoint_id=EP, request_id=rid, timeout_s=20))
    await events.wait_for(lambda ev: len(ev) >= 1)
    await loopback.advance(0.6)
    # The first stream ends after its 2nd event; the reopened one repeats the current status.
    await events.wait_for(lambda ev: len(ev) >= 3)
    assert events.statuses()[:3] == ["IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS"]
    assert loopback.state.faults.list() == []  # the drop was really served
    await loopback.advance(5)
    msg = await asyncio.wait_for(task, 10)
    assert msg.artifact["final"]["status"] == "COMPLETED"
    assert box.recorder.count("GET", "/status/stream") == 2


async def test_stream_gives_up_at_timeout_with_an_error(loopback: Harness):
    box = loopback.toolbox()
    rid = await _submit(box)
    events = StatusEvents()
    msg = await box.call("stream_queue_status", callbacks=[events], endpoint_id=EP,
                         request_id=rid, timeout_s=1.0)  # the clock never moves: no COMPLETED
    assert msg.content.startswith("Error:") and "FalTimeoutError" in msg.content
    assert "Last status seen" in msg.content and "IN_QUEUE" in msg.content
    assert "keeps running" in msg.content
    assert msg.artifact["error"]["type"] == "FalTimeoutError"
    assert msg.artifact["updates"] == len(events.events) >= 1


async def test_webhook_delivery_verifies_with_the_published_keys(sandbox: Harness,
                                                                 receiver: WebhookReceiver):
    box = sandbox.toolbox()
    sub = await box.call("submit_queue_request", endpoint_id=EP, webhook_url=receiver.url,
                         arguments={"prompt": "a red fox", "seed": 3})
    ok_id = sub.artifact["request_id"]
    sub = await box.call("submit_queue_request", endpoint_id=EP, webhook_url=receiver.url,
                         arguments={"prompt": ""})  # invalid: minLength 1
    bad_id = sub.artifact["request_id"]
    await sandbox.advance(15)  # both run (one runner), and their webhooks go out
    deliveries = await asyncio.to_thread(receiver.wait_for, 2)

    jwks = await box.call("get_webhook_jwks")
    keys = parse_jwks(jwks.artifact)
    assert len(keys) == 1
    bodies = {}
    for headers, body in deliveries:
        verify_webhook(headers, body, keys, now=time.time())
        doc = json.loads(body)
        assert headers["X-Fal-Webhook-Request-Id"] == doc["request_id"]
        bodies[doc["request_id"]] = doc
    assert set(bodies) == {ok_id, bad_id}

    result = await box.call("get_queue_result", endpoint_id=EP, request_id=ok_id)
    assert bodies[ok_id]["status"] == "OK" and bodies[ok_id]["error"] is None
    assert bodies[ok_id]["payload"] == result.artifact  # the webhook carries the same output
    assert bodies[bad_id]["status"] == "ERROR" and "422" in bodies[bad_id]["error"]
    assert bodies[bad_id]["payload"]["detail"][0]["loc"] == ["body", "prompt"]

    headers, body = deliveries[0]
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(headers, body + b" ", keys, now=time.time())
    assert info.value.reason == "bad_signature"

    async with httpx.AsyncClient(transport=sandbox.transport_fn()) as http:
        cache = JwksCache(sandbox.url + "/.well-known/jwks.json", client=http)
        for headers, body in deliveries:
            await cache.verify(headers, body)
        assert cache.fetch_count == 1


async def test_failed_delivery_is_retried_with_the_same_request_id(sandbox: Harness,
                                                                  receiver: WebhookReceiver):
    box = sandbox.toolbox()
    sandbox.state.faults.add("webhook_fail", times=1)  # the receiver gets it; the answer is lost
    sub = await box.call("submit_queue_request", endpoint_id=EP, webhook_url=receiver.url,
                         arguments={"prompt": "a red fox"})
    rid = sub.artifact["request_id"]
    await sandbox.advance(10)  # completes; first attempt
    await asyncio.to_thread(receiver.wait_for, 1)
    await sandbox.advance(6)  # past the first back-off: the retry
    deliveries = await asyncio.to_thread(receiver.wait_for, 2)
    assert len(deliveries) == 2
    async with httpx.AsyncClient(transport=sandbox.transport_fn()) as http:
        cache = JwksCache(sandbox.url + "/.well-known/jwks.json", client=http)
        for headers, body in deliveries:
            assert headers["X-Fal-Webhook-Request-Id"] == rid == json.loads(body)["request_id"]
            await cache.verify(headers, body)  # each attempt is signed afresh and verifies
    assert deliveries[0][1] == deliveries[1][1]  # the same body, so receivers can deduplicate
    assert [d.state for d in sandbox.state.webhooks.deliveries] == ["delivered"]


async def test_the_model_cannot_watch_past_fal_deadline(loopback: Harness):
    box = loopback.toolbox(FAL_DEADLINE_S=0.5)
    rid = await _submit(box)
    started = asyncio.get_running_loop().time()
    msg = await box.call("stream_queue_status", endpoint_id=EP, request_id=rid, timeout_s=3600)
    assert asyncio.get_running_loop().time() - started < 5  # not the model's 3600 s
    assert "FalTimeoutError" in msg.content and "capped by FAL_DEADLINE_S=0.5" in msg.content
    assert msg.artifact["waited_s"] == 0.5
