"""Where the client and the sandbox could read fal-api.md differently: id forms, early results,
start timeouts, priorities, media kinds, webhook URLs with a query, refusals."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from e2e_support import EP, Harness, WebhookReceiver


async def _submit(box, endpoint: str = EP, arguments=None, **extra) -> str:
    msg = await box.call("submit_queue_request", endpoint_id=endpoint,
                         arguments=arguments or {"prompt": "a red fox"}, **extra)
    assert not msg.content.startswith("Error:"), msg.content
    return msg.artifact["request_id"]


@pytest.mark.parametrize("endpoint, app_path", [
    ("workflows/fal-ai/sdxl-refiner-pipeline", "/workflows/fal-ai/sdxl-refiner-pipeline"),
    ("comfy/fal-ai/sdxl-turbo-graph", "/comfy/fal-ai/sdxl-turbo-graph"),
    ("fal-ai/flux-pro/v1.1-ultra", "/fal-ai/flux-pro"),
])
async def test_every_id_form_runs_the_whole_lifecycle(sandbox: Harness, endpoint, app_path):
    box = sandbox.toolbox()
    rid = await _submit(box, endpoint)
    await sandbox.advance(30)
    st = await box.call("get_queue_status", endpoint_id=endpoint, request_id=rid)
    assert st.artifact["status"] == "COMPLETED"
    res = await box.call("get_queue_result", endpoint_id=endpoint, request_id=rid)
    assert res.artifact["images"]
    msg = await box.call("cancel_queue_request", endpoint_id=endpoint, request_id=rid)
    assert msg.artifact["outcome"] == "already_completed"
    # Submit used the full id; status, result and cancel the owner/app form (namespace kept).
    paths = [p for _, p in box.recorder.requests]
    assert paths[0] == "/" + endpoint
    assert all(p.startswith(f"{app_path}/requests/{rid}") for p in paths[1:])


async def test_result_asked_too_early_is_not_called_a_failure(sandbox: Harness):
    box = sandbox.toolbox()
    rid = await _submit(box)
    msg = await box.call("get_queue_result", endpoint_id=EP, request_id=rid)
    assert msg.content.startswith("Error:") and "not ready" in msg.content
    assert "IN_QUEUE" in msg.content and "Do not resubmit" in msg.content
    assert "FAILED" not in msg.content and msg.artifact.get("failed") is None
    assert msg.artifact["pending"] is True and msg.artifact["status"]["status"] == "IN_QUEUE"
    await sandbox.advance(10)
    assert (await box.call("get_queue_result", endpoint_id=EP, request_id=rid)).artifact["images"]


async def test_start_timeout_expiry_is_the_requests_own_failure(sandbox: Harness):
    box = sandbox.toolbox()
    await _submit(box)  # holds the only runner for ~3 s
    late = await _submit(box, start_timeout_s=2)
    await sandbox.advance(10)
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=late)
    assert st.artifact["status"] == "COMPLETED" and st.artifact["error_type"] == "request_timeout"
    res = await box.call("get_queue_result", endpoint_id=EP, request_id=late)
    assert res.content.startswith("Error:") and "FAILED (HTTP 504" in res.content
    assert res.artifact["failed"] is True and res.artifact["error"]["type"] == "RequestFailedError"
    assert box.recorder.count("GET", f"/requests/{late}") == 1  # final: not retried


async def test_low_priority_waits_behind_normal(sandbox: Harness):
    box = sandbox.toolbox()
    low = await _submit(box, priority="low")
    normal = await _submit(box)
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=low)
    assert st.artifact["queue_position"] == 1
    await sandbox.advance(0.6)
    assert (await box.call("get_queue_status", endpoint_id=EP,
                           request_id=normal)).artifact["status"] == "IN_PROGRESS"


@pytest.mark.parametrize("endpoint, arguments, key, magic", [
    ("fal-ai/kokoro/american-english", {"text": "hello from the sandbox"}, "audio", b"RIFF"),
    ("fal-ai/ltx-video", {"prompt": "waves"}, "video", b"GIF8"),
])
async def test_audio_and_video_results_download(sandbox: Harness, endpoint, arguments, key, magic):
    box = sandbox.toolbox()
    rid = await _submit(box, endpoint, arguments)
    await sandbox.advance(60)
    res = await box.call("get_queue_result", endpoint_id=endpoint, request_id=rid)
    media = res.artifact[key]
    assert media["url"] in res.content
    got = await sandbox.download(media["url"])
    assert got.status_code == 200 and got.content.startswith(magic)
    assert got.headers["content-type"] == media["content_type"]


async def test_webhook_url_with_a_query_arrives_intact(sandbox: Harness, receiver: WebhookReceiver):
    box = sandbox.toolbox()
    url = receiver.url + "?token=a b&next=/x?y=1"
    rid = await _submit(box, webhook_url=url)
    await sandbox.advance(10)
    [(headers, _)] = await asyncio.to_thread(receiver.wait_for, 1)
    assert headers["X-Fal-Webhook-Request-Id"] == rid
    [delivery] = sandbox.state.webhooks.deliveries
    query = parse_qs(urlsplit(delivery.url).query)
    assert query == {"token": ["a b"], "next": ["/x?y=1"]}


async def test_refusals_are_explained(sandbox: Harness):
    box = sandbox.toolbox()
    msg = await box.call("stream_queue_status", endpoint_id=EP, request_id=str(uuid.uuid4()),
                         timeout_s=5)
    assert msg.content.startswith("Error:") and msg.artifact["error"]["status"] == 404
    msg = await box.call("search_models", cursor="not base64!")
    assert msg.content.startswith("Error:") and "cursor" in msg.content.lower()
    assert msg.artifact["error"]["status"] == 400
    sent = len(box.recorder.requests)
    msg = await box.call("get_pricing", endpoint_ids=[f"fal-ai/m{i}" for i in range(51)])
    assert msg.content.startswith("Error:")
    msg = await box.call("submit_queue_request", endpoint_id=EP, arguments={"prompt": "x"},
                         webhook_url="ftp://example.com/hook")
    assert msg.content.startswith("Error:") and "webhook_url" in msg.content
    assert len(box.recorder.requests) == sent and sandbox.state.queue.jobs == {}
