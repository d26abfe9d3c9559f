"""The nine tools end to end against the sandbox: platform API, queue lifecycle, results,
failures, cancels and the JWKS. Each test runs twice: over loopback TCP and in-process."""

from __future__ import annotations

import math
import uuid

import pytest
from e2e_support import EP, Harness, png_size

from sandbox import catalog


async def test_search_models_by_query_category_and_status(sandbox: Harness):
    box = sandbox.toolbox()
    msg = await box.call("search_models", query="flux", limit=100)
    models = msg.artifact["models"]
    assert models and all("flux" in (m["endpoint_id"] + m["metadata"]["display_name"]).lower()
                          for m in models)
    assert "fal-ai/flux/dev" in msg.content and "endpoint_id | name" in msg.content

    msg = await box.call("search_models", category="text-to-video", limit=100)
    models = msg.artifact["models"]
    assert models and {m["metadata"]["category"] for m in models} == {"text-to-video"}
    expected = {e.endpoint_id for e in catalog.endpoints() if e.category == "text-to-video"}
    assert {m["endpoint_id"] for m in models} == expected

    msg = await box.call("search_models", status="deprecated", limit=100)
    models = msg.artifact["models"]
    assert models and {m["metadata"]["status"] for m in models} == {"deprecated"}
    assert "deprecated" in msg.content

    msg = await box.call("search_models", endpoint_ids=["fal-ai/veo3", EP])
    assert {m["endpoint_id"] for m in msg.artifact["models"]} == {"fal-ai/veo3", EP}


async def test_search_models_pages_with_cursor(sandbox: Harness):
    box = sandbox.toolbox()
    everything = (await box.call("search_models", category="text-to-image", limit=100)).artifact
    assert everything["has_more"] is False
    want = [m["endpoint_id"] for m in everything["models"]]
    assert len(want) > 8

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        args = {"category": "text-to-image", "limit": 4}
        if cursor is not None:
            args["cursor"] = cursor
        msg = await box.call("search_models", **args)
        page = msg.artifact
        pages += 1
        seen += [m["endpoint_id"] for m in page["models"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None and "No more pages" in msg.content
            break
        cursor = page["next_cursor"]
        assert cursor and f"cursor={cursor!r}" in msg.content  # the content tells the LLM how
        assert pages < 20
    assert seen == want  # every model once, in order, across pages
    assert pages == math.ceil(len(want) / 4)


async def test_search_models_expand_openapi(sandbox: Harness):
    box = sandbox.toolbox()
    plain = (await box.call("search_models", endpoint_ids=[EP])).artifact["models"][0]
    assert plain["openapi"] is None
    expanded = (await box.call("search_models", endpoint_ids=[EP],
                               expand_openapi=True)).artifact["models"][0]
    doc = expanded["openapi"]
    assert doc["openapi"].startswith("3.0") and doc["paths"]
    assert "prompt" in str(doc["components"]["schemas"])


async def test_get_pricing_several_and_unknown(sandbox: Harness):
    box = sandbox.toolbox()
    ids = [EP, "fal-ai/flux/schnell", "fal-ai/veo3"]
    msg = await box.call("get_pricing", endpoint_ids=ids)
    prices = {p["endpoint_id"]: p for p in msg.artifact["prices"]}
    assert set(prices) == set(ids)
    table = catalog.by_id()
    for eid, price in prices.items():
        assert price["unit_price"] == pytest.approx(table[eid].unit_price)
        assert price["unit"] == table[eid].unit and price["currency"] == "USD"
        assert eid in msg.content
    assert f"{table[EP].unit_price:g} USD per {table[EP].unit}" in msg.content

    msg = await box.call("get_pricing", endpoint_ids=[EP, "fal-ai/no-such-model"])
    assert msg.content.startswith("Error:")
    assert "NotFoundError" in msg.content and "fal-ai/no-such-model" in msg.content
    assert msg.artifact["error"]["status"] == 404


async def test_estimate_pricing_both_types_sum_the_table(sandbox: Harness):
    box = sandbox.toolbox()
    units = {EP: 10, "fal-ai/flux/schnell": 2.5, "fal-ai/veo3": 8}
    prices = (await box.call("get_pricing", endpoint_ids=list(units))).artifact["prices"]
    by_id = {p["endpoint_id"]: p["unit_price"] for p in prices}
    msg = await box.call("estimate_pricing", estimate_type="unit_price", endpoints=units)
    want = sum(by_id[e] * q for e, q in units.items())
    assert msg.artifact["estimate_type"] == "unit_price"
    assert msg.artifact["total_cost"] == pytest.approx(want, abs=1e-6)
    assert msg.artifact["currency"] == "USD" and f"{msg.artifact['total_cost']:g}" in msg.content

    calls = {EP: 100, "fal-ai/flux/schnell": 50}
    msg = await box.call("estimate_pricing", estimate_type="historical_api_price", endpoints=calls)
    table = catalog.by_id()
    want = sum(table[e].historical_price * q for e, q in calls.items())
    assert msg.artifact["total_cost"] == pytest.approx(want, abs=1e-6)
    assert "calls" in msg.content


@pytest.mark.parametrize("args, words, checked_by", [
    ({"estimate_type": "unit_price", "endpoints": {EP: -1}}, "unit quantity", "client"),
    ({"estimate_type": "historical_api_price", "endpoints": {EP: 1.5}}, "whole number", "client"),
    ({"estimate_type": "by_vibes", "endpoints": {EP: 1}}, "estimate_type", "schema"),
    ({"estimate_type": "unit_price", "endpoints": {}}, "endpoints", "schema"),
])
async def test_estimate_pricing_refuses_bad_input_before_sending(sandbox: Harness, args, words,
                                                                 checked_by):
    box = sandbox.toolbox()
    msg = await box.call("estimate_pricing", **args)
    assert msg.content.startswith("Error:") and words in msg.content
    assert msg.artifact["error"]["type"] == "InputError"
    if checked_by == "schema":
        assert "invalid arguments" in msg.content
    assert box.recorder.requests == []  # refused locally: nothing reached the sandbox


async def test_estimate_pricing_unknown_endpoint_is_a_404(sandbox: Harness):
    box = sandbox.toolbox()
    msg = await box.call("estimate_pricing", estimate_type="unit_price",
                         endpoints={"fal-ai/not-a-model": 3})
    assert msg.content.startswith("Error:") and msg.artifact["error"]["status"] == 404
    assert "fal-ai/not-a-model" in msg.content


async def test_queue_lifecycle_status_then_result_with_real_png(sandbox: Harness):
    box = sandbox.toolbox()
    first = await box.call("submit_queue_request", endpoint_id=EP,
                           arguments={"prompt": "a red fox", "seed": 7})
    second = await box.call("submit_queue_request", endpoint_id=EP,
                            arguments={"prompt": "a blue whale", "seed": 8})
    rid, rid2 = first.artifact["request_id"], second.artifact["request_id"]
    assert rid in first.content and "Submitted to fal-ai/flux/dev" in first.content
    assert first.artifact["status_url"].endswith(f"/fal-ai/flux/requests/{rid}/status")

    st = await box.call("get_queue_status", endpoint_id=EP, request_id=rid2)
    assert st.artifact["status"] == "IN_QUEUE" and st.artifact["queue_position"] == 1
    assert "IN_QUEUE position 1" in st.content

    await sandbox.advance(0.6)  # past the queue delay: the first job starts
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=rid, logs=True)
    assert st.artifact["status"] == "IN_PROGRESS" and st.artifact["logs"]
    first_logs = len(st.artifact["logs"])
    assert "IN_PROGRESS" in st.content and st.artifact["logs"][0]["message"] in st.content
    st2 = await box.call("get_queue_status", endpoint_id=EP, request_id=rid2)
    assert st2.artifact["status"] == "IN_QUEUE" and st2.artifact["queue_position"] == 0
    assert "at the front" in st2.content

    await sandbox.advance(1.5)
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=rid, logs=True)
    assert st.artifact["status"] == "IN_PROGRESS" and len(st.artifact["logs"]) > first_logs
    no_logs = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert no_logs.artifact["logs"] is None

    await sandbox.advance(5)
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert st.artifact["status"] == "COMPLETED" and st.artifact["error"] is None
    assert st.artifact["metrics"]["inference_time"] > 0
    assert "COMPLETED in" in st.content and "get_queue_result" in st.content

    res = await box.call("get_queue_result", endpoint_id=EP, request_id=rid)
    images = res.artifact["images"]
    assert images and res.artifact["seed"] == 7
    for image in images:
        assert image["url"] in res.content
        got = await sandbox.download(image["url"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert png_size(got.content) == (image["width"], image["height"])

    await sandbox.advance(5)
    other = await box.call("get_queue_result", endpoint_id=EP, request_id=rid2)
    other_png = (await sandbox.download(other.artifact["images"][0]["url"])).content
    assert other_png != (await sandbox.download(images[0]["url"])).content  # per prompt/seed


async def test_bad_input_completes_with_a_plain_422(sandbox: Harness):
    box = sandbox.toolbox()
    sub = await box.call("submit_queue_request", endpoint_id=EP,
                         arguments={"num_inference_steps": 500})
    rid = sub.artifact["request_id"]  # fal accepts the job; the runner refuses the input
    await sandbox.advance(5)
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=rid)
    assert st.artifact["status"] == "COMPLETED" and st.artifact["error"]
    assert "COMPLETED WITH AN ERROR" in st.content

    res = await box.call("get_queue_result", endpoint_id=EP, request_id=rid)
    assert res.content.startswith("Error:") and "FAILED (HTTP 422" in res.content
    assert "prompt" in res.content and "Field required" in res.content
    assert "num_inference_steps" in res.content
    art = res.artifact
    assert art["failed"] is True and art["error"]["status"] == 422
    locs = [d["loc"] for d in art["error"]["detail"]["detail"]]
    assert ["body", "prompt"] in locs and ["body", "num_inference_steps"] in locs


async def test_cancel_three_outcomes(sandbox: Harness):
    box = sandbox.toolbox()
    queued = (await box.call("submit_queue_request", endpoint_id=EP,
                             arguments={"prompt": "x"})).artifact["request_id"]
    msg = await box.call("cancel_queue_request", endpoint_id=EP, request_id=queued)
    assert msg.artifact["outcome"] == "requested" and msg.artifact["http_status"] == 202
    assert msg.artifact["fal_status"] == "CANCELLATION_REQUESTED"
    assert "Cancellation requested" in msg.content
    st = await box.call("get_queue_status", endpoint_id=EP, request_id=queued)
    assert st.artifact["status"] == "COMPLETED" and st.artifact["error"]  # fal never says CANCELLED

    done = (await box.call("submit_queue_request", endpoint_id="fal-ai/flux/schnell",
                           arguments={"prompt": "y"})).artifact["request_id"]
    await sandbox.advance(5)
    msg = await box.call("cancel_queue_request", endpoint_id="fal-ai/flux/schnell",
                         request_id=done)
    assert msg.artifact["outcome"] == "already_completed" and msg.artifact["http_status"] == 400
    assert "ALREADY COMPLETED" in msg.content and not msg.content.startswith("Error:")

    ghost = str(uuid.uuid4())
    msg = await box.call("cancel_queue_request", endpoint_id=EP, request_id=ghost)
    assert msg.artifact["outcome"] == "not_found" and msg.artifact["http_status"] == 404
    assert "NOT FOUND" in msg.content and ghost in msg.content


async def test_unknown_request_and_endpoint_are_explained(sandbox: Harness):
    box = sandbox.toolbox()
    ghost = str(uuid.uuid4())
    msg = await box.call("get_queue_status", endpoint_id=EP, request_id=ghost)
    assert msg.content.startswith("Error:") and "NotFoundError" in msg.content
    assert msg.artifact["error"]["status"] == 404
    msg = await box.call("submit_queue_request", endpoint_id="fal-ai/no-such-app",
                         arguments={"prompt": "x"})
    assert msg.content.startswith("Error:") and "no-such-app" in msg.content
    assert msg.artifact["error"]["status"] == 404


async def test_get_webhook_jwks_is_the_sandbox_key(sandbox: Harness):
    box = sandbox.toolbox()
    msg = await box.call("get_webhook_jwks")
    served = sandbox.state.signer.jwks()["keys"]
    assert [k["x"] for k in msg.artifact["keys"]] == [k["x"] for k in served]
    assert msg.artifact["keys"][0]["kty"] == "OKP" and msg.artifact["keys"][0]["crv"] == "Ed25519"
    assert "1 webhook signing key" in msg.content and served[0]["x"][:12] in msg.content
    # The JWKS is public: the client must not send the key there.
    assert box.recorder.requests == [("GET", "/.well-known/jwks.json")]
    assert "authorization" not in box.recorder.sent[0].headers
