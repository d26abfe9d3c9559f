"""The product's default path: tools built from the environment alone (no client handed in),
called synchronously, against a loopback sandbox."""

from __future__ import annotations

from e2e_support import EP, KEY, assert_no_secret

from sandbox.server import RunningSandbox
from tools import build_fal_tools


def test_tools_from_the_environment_work_synchronously(running_sandbox: RunningSandbox,
                                                       monkeypatch):
    url = running_sandbox.url
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("FAL_QUEUE_BASE_URL", url)
    monkeypatch.setenv("FAL_API_BASE_URL", url + "/v1")
    monkeypatch.setenv("FAL_JWKS_URL", url + "/.well-known/jwks.json")
    tools = {t.name: t for t in build_fal_tools()}

    def call(name, **args):
        msg = tools[name].invoke({"name": name, "args": args, "id": "c1", "type": "tool_call"})
        assert_no_secret(msg, (KEY, "test-secret"))
        assert not str(msg.content).startswith("Error:"), msg.content
        return msg

    rid = call("submit_queue_request", endpoint_id=EP,
               arguments={"prompt": "a red fox"}).artifact["request_id"]
    assert call("get_queue_status", endpoint_id=EP, request_id=rid).artifact["status"] == "IN_QUEUE"
    running_sandbox.advance(10)
    final = call("stream_queue_status", endpoint_id=EP, request_id=rid, timeout_s=10)
    assert final.artifact["final"]["status"] == "COMPLETED"
    assert call("get_queue_result", endpoint_id=EP, request_id=rid).artifact["images"]
    assert call("search_models", query="flux").artifact["models"]
    assert call("get_pricing", endpoint_ids=[EP]).artifact["prices"]
    assert call("estimate_pricing", estimate_type="unit_price",
                endpoints={EP: 2}).artifact["total_cost"] > 0
    assert call("get_webhook_jwks").artifact["keys"]
    assert call("cancel_queue_request", endpoint_id=EP,
                request_id=rid).artifact["outcome"] == "already_completed"
