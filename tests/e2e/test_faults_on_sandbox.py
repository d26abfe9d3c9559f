"""Faults injected in the sandbox, met by the real client under the tools: retries where they
are safe, never for a submit that may have landed, and readable Error: content otherwise.
Auth refusals and the key's secrecy are checked here too."""

from __future__ import annotations

import uuid

from e2e_support import EP, KEY, LOCKED_KEY, Harness


async def _submit(box, endpoint: str = EP) -> str:
    msg = await box.call("submit_queue_request", endpoint_id=endpoint, arguments={"prompt": "x"})
    assert not msg.content.startswith("Error:"), msg.content
    return msg.artifact["request_id"]


async def test_429_with_retry_after_is_retried_on_reads(sandbox: Harness):
    box = sandbox.toolbox()
    rid = await _submit(box)
    faults = sandbox.state.faults
    faults.add("rate_limit", ops=["status"], times=2, retry_after=0.05)
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert msg.artifact["status"] == "IN_QUEUE"
    assert box.recorder.count("GET", f"/requests/{rid}/status") == 3  # two 429s, then the answer

    faults.add("rate_limit", ops=["platform"], times=1, retry_after=0.05)
    msg = await box.call("search_models", query="flux")
    assert msg.artifact["models"] and box.recorder.count("GET", "/v1/models") == 2
    faults.add("rate_limit", ops=["platform"], times=1, retry_after=0.05)
    msg = await box.call("get_pricing", endpoint_ids=[EP])
    assert msg.artifact["prices"][0]["endpoint_id"] == EP
    assert box.recorder.count("GET", "/v1/models/pricing") == 2
    assert faults.list() == []


async def test_retry_after_beyond_the_deadline_is_reported_not_slept(sandbox: Harness):
    box = sandbox.toolbox(FAL_DEADLINE_S=2.0)
    sandbox.state.faults.add("rate_limit", ops=["platform"], times=1, retry_after=30)
    msg = await box.call("search_models", query="flux")
    assert msg.content.startswith("Error:") and "RateLimitedError" in msg.content
    err = msg.artifact["error"]
    assert err["status"] == 429 and err["retry_after_s"] == 30
    assert box.recorder.count("GET", "/v1/models") == 1


async def test_burst_of_5xx_then_success(sandbox: Harness):
    box = sandbox.toolbox()
    rid = await _submit(box)
    sandbox.state.faults.add("server_error", ops=["status"], times=3, status=503)
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert msg.artifact["status"] == "IN_QUEUE"
    assert box.recorder.count("GET", "/status") == 4

    sandbox.state.faults.add("server_error", ops=["platform"], times=2, status=502)
    msg = await box.call("estimate_pricing", estimate_type="unit_price", endpoints={EP: 4})
    assert msg.artifact["total_cost"] > 0
    assert box.recorder.count("POST", "/v1/models/pricing/estimate") == 3

    await sandbox.advance(10)
    sandbox.state.faults.add("server_error", ops=["result"], times=2, status=504)
    msg = await box.call("get_queue_result", endpoint_id=EP, request_id=rid)
    assert msg.artifact["images"] and box.recorder.count("GET", f"/requests/{rid}") == 3


async def test_submit_is_never_retried_on_a_5xx(sandbox: Harness):
    box = sandbox.toolbox()
    fault = sandbox.state.faults.add("server_error", ops=["submit"], times=5, status=503)
    msg = await box.call("submit_queue_request", endpoint_id=EP, arguments={"prompt": "x"})
    assert msg.content.startswith("Error:") and "ServerError" in msg.content
    assert msg.artifact["error"]["status"] == 503
    assert box.recorder.count("POST", "/fal-ai/flux/dev") == 1
    assert fault.times == 4  # the sandbox saw exactly one submit
    assert sandbox.state.queue.jobs == {}


async def test_submit_is_retried_on_429_and_queued_once(sandbox: Harness):
    box = sandbox.toolbox()
    sandbox.state.faults.add("rate_limit", ops=["submit"], times=1, retry_after=0.05)
    rid = await _submit(box)
    assert box.recorder.count("POST", "/fal-ai/flux/dev") == 2
    assert list(sandbox.state.queue.jobs) == [rid]


async def test_malformed_json_becomes_error_content(sandbox: Harness):
    box = sandbox.toolbox()
    rid = await _submit(box)
    faults = sandbox.state.faults
    faults.add("malformed_json", ops=["status"], times=None)
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert msg.content.startswith("Error:") and "InvalidResponseError" in msg.content
    assert msg.artifact["error"]["type"] == "InvalidResponseError"
    faults.clear()

    faults.add("malformed_json", ops=["platform"], times=None)
    for name, args in [("search_models", {"query": "flux"}), ("get_pricing", {"endpoint_ids": [EP]}),
                       ("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 1}})]:
        msg = await box.call(name, **args)
        assert msg.content.startswith("Error:") and "InvalidResponseError" in msg.content, name
    faults.clear()

    await sandbox.advance(10)
    faults.add("malformed_json", ops=["result"], times=None)
    msg = await box.call("get_queue_result", endpoint_id=EP, request_id=rid)
    assert msg.content.startswith("Error:") and msg.artifact["error"]["type"] == "InvalidResponseError"
    faults.clear()


async def test_slow_answer_beyond_the_deadline_is_a_timeout_error(sandbox: Harness):
    box = sandbox.toolbox(FAL_DEADLINE_S=0.5)
    rid = await _submit(box)
    sandbox.state.faults.add("delay", ops=["status"], times=1, delay_s=60)
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert msg.content.startswith("Error:") and "FalTimeoutError" in msg.content
    assert "0.5s" in msg.content and "Next:" in msg.content
    assert msg.artifact["error"]["type"] == "FalTimeoutError"
    await sandbox.advance(61)  # release the held answer so the server can shut down promptly
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert msg.artifact["status"] == "COMPLETED"


async def test_locked_key_gets_a_403_explained(sandbox: Harness):
    box = sandbox.toolbox(key=LOCKED_KEY)
    msg = await box.call("submit_queue_request", endpoint_id=EP, arguments={"prompt": "x"})
    assert msg.content.startswith("Error:") and "LockedAccountError" in msg.content
    assert "User is locked" in msg.content and "Top up" in msg.content
    assert msg.artifact["error"]["status"] == 403
    msg = await box.call("get_pricing", endpoint_ids=[EP])
    assert msg.artifact["error"]["status"] == 403 and "locked" in msg.content.lower()
    assert sandbox.state.queue.jobs == {}


async def test_malformed_key_gets_a_401_explained(sandbox: Harness):
    box = sandbox.toolbox(key="just-one-long-token-without-a-colon")
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=str(uuid.uuid4()))
    assert msg.content.startswith("Error:") and "AuthError" in msg.content
    assert "<key_id>:<key_secret>" in msg.content and "FAL_KEY" in msg.content
    assert msg.artifact["error"]["status"] == 401
    msg = await box.call("search_models", query="flux")  # refused even where a key is optional
    assert msg.artifact["error"]["status"] == 401


async def test_pricing_without_a_key_is_refused_but_search_works(sandbox: Harness):
    box = sandbox.toolbox(key=None)
    msg = await box.call("get_pricing", endpoint_ids=[EP])
    assert msg.content.startswith("Error:") and msg.artifact["error"]["status"] == 401
    assert "FAL_KEY" in msg.content
    assert (await box.call("search_models", query="flux")).artifact["models"]


async def test_key_appears_in_no_tool_answer(sandbox: Harness, receiver):
    """Every tool, on success and on failure: ToolBox.call checks content and artifact."""
    box = sandbox.toolbox()
    assert "test-secret" not in repr(box.client) and "test-secret" not in str(box.tools)
    rid = await _submit(box)
    calls = [
        ("get_queue_status", {"endpoint_id": EP, "request_id": rid, "logs": True}),
        ("stream_queue_status", {"endpoint_id": EP, "request_id": rid, "timeout_s": 10}),
        ("get_queue_result", {"endpoint_id": EP, "request_id": rid}),
        ("cancel_queue_request", {"endpoint_id": EP, "request_id": rid}),
        ("search_models", {"query": "flux", "expand_openapi": True}),
        ("get_pricing", {"endpoint_ids": [EP, "fal-ai/nope"]}),
        ("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 2}}),
        ("get_webhook_jwks", {}),
        ("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "y"},
                                  "webhook_url": receiver.url}),
    ]
    await sandbox.advance(10)
    sandbox.state.faults.add("server_error", ops=["status"], times=None, status=500)
    answers = [await box.call(name, **args) for name, args in calls]
    answers.append(await box.call("get_queue_status", endpoint_id=EP, request_id=rid))
    assert answers[-1].content.startswith("Error:")  # the failure path was checked too
    assert len(answers) == 10 and KEY not in str([a.content for a in answers])


async def test_a_submit_whose_answer_is_lost_says_it_may_exist_never_retry(sandbox: Harness):
    box = sandbox.toolbox()
    sandbox.state.faults.add("malformed_json", ops=["submit"], times=1)
    msg = await box.call("submit_queue_request", endpoint_id=EP, arguments={"prompt": "x"})
    assert msg.content.startswith("Error:") and "SubmitUnknownError" in msg.content
    assert "may have been created" in msg.content and "Do not submit again" in msg.content
    assert "Next: Retry" not in msg.content
    assert box.recorder.count("POST", "/fal-ai/flux/dev") == 1
    assert len(sandbox.state.queue.jobs) == 1  # it did exist at fal
