"""FalClient over httpx.MockTransport: requests on the wire, refusals, retries, deadlines."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from fal_fakes import API, DONE_ID, FAILED_ID, JWKS_URL, KEY, QUEUE, QUEUED_ID, FakeFal

from tools.fal import FalClient
from tools.fal import errors as E

EP = "fal-ai/flux/dev"


@pytest.fixture
def fake() -> FakeFal:
    return FakeFal()


@pytest.fixture
async def fal(fake):
    async with FalClient(fake.config(), transport=fake.transport()) as client:
        yield client


async def test_submit_sends_key_priority_timeout_and_webhook(fal, fake):
    sub = await fal.submit(EP, {"prompt": "a fox"}, webhook_url="https://hook.example/x?a=1",
                           priority="low", start_timeout_s=30)
    req = fake.seen[-1]
    assert req.method == "POST" and req.url.path == "/fal-ai/flux/dev"
    assert req.headers["authorization"] == f"Key {KEY}"
    assert req.headers["x-fal-queue-priority"] == "low"
    assert req.headers["x-fal-request-timeout"] == "30.0"
    assert req.url.params["fal_webhook"] == "https://hook.example/x?a=1"
    assert json.loads(req.content) == {"prompt": "a fox"}
    assert sub.request_id in fake.jobs and sub.status_url.endswith("/status")


async def test_status_result_cancel_drop_the_sub_path(fal, fake):
    st = await fal.status(EP, DONE_ID, logs=True)
    assert st.status == "COMPLETED" and st.logs[0].message == "step 3/28"
    assert fake.seen[-1].url.path == f"/fal-ai/flux/requests/{DONE_ID}/status"
    assert fake.seen[-1].url.params["logs"] == "1"
    out = await fal.result(EP, DONE_ID)
    assert out["seed"] == 42 and fake.seen[-1].url.path == f"/fal-ai/flux/requests/{DONE_ID}"
    res = await fal.cancel(EP, QUEUED_ID)
    assert fake.seen[-1].method == "PUT"
    assert fake.seen[-1].url.path == f"/fal-ai/flux/requests/{QUEUED_ID}/cancel"
    assert (res.outcome, res.http_status, res.fal_status) == (
        "requested", 202, "CANCELLATION_REQUESTED")


async def test_cancel_outcomes(fal):
    assert (await fal.cancel(EP, DONE_ID)).outcome == "already_completed"
    assert (await fal.cancel(EP, "0000-unknown")).outcome == "not_found"


async def test_failed_request_result_raises_with_detail(fal):
    with pytest.raises(E.RequestFailedError) as info:
        await fal.result(EP, FAILED_ID)
    err = info.value
    assert err.status == 422 and err.request_id == FAILED_ID
    assert err.detail["detail"][0]["msg"] == "field required"
    assert isinstance(err.__cause__, httpx.HTTPStatusError)


async def test_platform_calls(fal, fake):
    page = await fal.models(query="flux", endpoint_ids=["fal-ai/flux/dev", "fal-ai/flux/schnell"],
                            limit=1, expand_openapi=True, status="active", category="text-to-image")
    q = fake.seen[-1].url.params
    assert fake.seen[-1].url.path == "/v1/models"
    assert q.get_list("endpoint_id") == ["fal-ai/flux/dev", "fal-ai/flux/schnell"]
    assert (q["q"], q["limit"], q["expand"], q["status"], q["category"]) == (
        "flux", "1", "openapi-3.0", "active", "text-to-image")
    assert page.has_more and page.next_cursor == "Mg==" and page.models[0].openapi
    prices = await fal.pricing(["fal-ai/flux/dev"])
    assert prices.prices[0].unit_price == 0.025
    est = await fal.estimate("historical_api_price", {"fal-ai/flux/dev": 100})
    assert json.loads(fake.seen[-1].content) == {
        "estimate_type": "historical_api_price",
        "endpoints": {"fal-ai/flux/dev": {"call_quantity": 100}}}
    assert est.total_cost == 2.5
    await fal.estimate("unit_price", {"fal-ai/flux/dev": 0.5})
    assert json.loads(fake.seen[-1].content)["endpoints"] == {
        "fal-ai/flux/dev": {"unit_quantity": 0.5}}


async def test_jwks_is_fetched_without_the_key(fal, fake):
    doc = await fal.jwks()
    assert doc.keys[0].crv == "Ed25519"
    assert str(fake.seen[-1].url) == JWKS_URL
    assert "authorization" not in fake.seen[-1].headers


BAD_CALLS = [
    lambda f: f.submit("not an id", {}),
    lambda f: f.submit(EP, ["not", "a", "dict"]),
    lambda f: f.submit(EP, {"x": object()}),
    lambda f: f.submit(EP, {}, priority="urgent"),
    lambda f: f.submit(EP, {}, start_timeout_s=1),
    lambda f: f.submit(EP, {}, start_timeout_s=0.5),
    lambda f: f.submit(EP, {}, webhook_url="ftp://x/y"),
    lambda f: f.submit(EP, {}, webhook_url="not a url"),
    lambda f: f.status(EP, ""),
    lambda f: f.status("flux", DONE_ID),
    lambda f: f.result(EP, "   "),
    lambda f: f.cancel("fal-ai//flux", DONE_ID),
    lambda f: f.cancel(EP, "a/b"),
    lambda f: f.models(limit=0),
    lambda f: f.models(status="gone"),
    lambda f: f.models(endpoint_ids=["bad id"]),
    lambda f: f.pricing([]),
    lambda f: f.pricing([f"o/a{i}" for i in range(51)]),
    lambda f: f.estimate("guess", {EP: 1}),
    lambda f: f.estimate("historical_api_price", {EP: -1}),
    lambda f: f.estimate("historical_api_price", {EP: 0}),
    lambda f: f.estimate("historical_api_price", {EP: 2.5}),
    lambda f: f.estimate("unit_price", {EP: -0.5}),
    lambda f: f.estimate("unit_price", {EP: 0}),
    lambda f: f.estimate("unit_price", {}),
    lambda f: f.estimate("unit_price", {"bad": 1}),
]


@pytest.mark.parametrize("call", BAD_CALLS)
async def test_bad_input_is_refused_before_any_request(fal, fake, call):
    with pytest.raises(E.InputError):
        await call(fal)
    assert fake.seen == []


async def test_bad_stream_input_is_refused_before_any_request(fal, fake):
    for args in ((EP, ""), ("x", DONE_ID)):
        with pytest.raises(E.InputError):
            fal.stream_status(*args)
    with pytest.raises(E.InputError):
        fal.stream_status(EP, DONE_ID, deadline_s=0)
    assert fake.seen == []


@pytest.mark.parametrize("raw", [b"not json at all", b'{"status": "COMPL', b""])
async def test_non_json_or_truncated_answer_is_typed(fake, raw):
    def handler(request):
        return httpx.Response(200, content=raw, headers={"x-fal-request-id": "r9"})

    async with FalClient(fake.config(), transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.InvalidResponseError) as info:
            await fal.status(EP, DONE_ID)
        assert info.value.request_id == "r9"
        with pytest.raises(E.InvalidResponseError):
            await fal.result(EP, DONE_ID)


async def test_server_that_stops_answering_times_out_within_deadline(fake):
    never = asyncio.Event()
    calls = 0

    async def handler(request):
        nonlocal calls
        calls += 1
        await never.wait()

    async with FalClient(fake.config(FAL_DEADLINE_S=0.2),
                         transport=httpx.MockTransport(handler)) as fal:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(E.FalTimeoutError) as info:
            await asyncio.wait_for(fal.status(EP, DONE_ID), timeout=5)
        assert loop.time() - started < 5  # raised by our deadline, not by wait_for
        assert isinstance(info.value.__cause__, TimeoutError)
        # A submit that was sent and never answered may exist at fal: it says so, it is no timeout.
        with pytest.raises(E.SubmitUnknownError) as sub:
            await asyncio.wait_for(fal.submit(EP, {}), timeout=5)
        assert isinstance(sub.value.__cause__, E.FalTimeoutError)
    assert calls == 2


def _flaky(fail_with, then=None):
    """A handler answering ``fail_with`` (status or exception class) first, then ``then``."""
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        if len(seen) == 1:
            if isinstance(fail_with, int):
                return httpx.Response(fail_with, json={"detail": "busy"},
                                      headers={"retry-after": "0"})
            raise fail_with("boom", request=request)
        return then or httpx.Response(200, json={"status": "IN_QUEUE", "queue_position": 0,
                                                 "request_id": "r"})
    return handler, seen


@pytest.mark.parametrize("fail_with", [408, 409, 429, 502, 503, 504, httpx.ConnectError,
                                       httpx.ReadError, httpx.ReadTimeout])
async def test_status_is_retried(fake, fail_with):
    handler, seen = _flaky(fail_with)
    async with FalClient(fake.config(), transport=httpx.MockTransport(handler)) as fal:
        assert (await fal.status(EP, DONE_ID)).status == "IN_QUEUE"
    assert len(seen) == 2


@pytest.mark.parametrize("fail_with, retried", [
    (429, True), (httpx.ConnectError, True), (httpx.ConnectTimeout, True),
    (503, False), (502, False), (504, False), (httpx.ReadTimeout, False),
    (httpx.RemoteProtocolError, False), (httpx.WriteError, False),
])
async def test_submit_is_retried_only_when_not_received(fake, fail_with, retried):
    handler, seen = _flaky(fail_with, httpx.Response(200, json={"request_id": "r2"}))
    async with FalClient(fake.config(), transport=httpx.MockTransport(handler)) as fal:
        if retried:
            assert (await fal.submit(EP, {"prompt": "x"})).request_id == "r2"
        else:
            with pytest.raises(E.FalError):
                await fal.submit(EP, {"prompt": "x"})
    assert len(seen) == (2 if retried else 1)


async def test_retries_stop_at_max_retries(fake):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(503, json={"detail": "down"}, headers={"retry-after": "0"})

    async with FalClient(fake.config(FAL_MAX_RETRIES=3),
                         transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.ServerError):
            await fal.status(EP, DONE_ID)
    assert len(seen) == 4


async def test_retry_after_beyond_deadline_gives_up_at_once(fake):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(429, json={"detail": "slow down"}, headers={"retry-after": "60"})

    async with FalClient(fake.config(FAL_DEADLINE_S=1),
                         transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.RateLimitedError) as info:
            await fal.status(EP, DONE_ID)
    assert info.value.retry_after_s == 60 and len(seen) == 1


async def test_user_start_timeout_is_not_retried(fake):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(504, json={"detail": "Request timed out"},
                              headers={"x-fal-request-timeout-type": "user"})

    async with FalClient(fake.config(), transport=httpx.MockTransport(handler)) as fal:
        # The request's own start timeout expired: its final outcome, not an outage.
        with pytest.raises(E.RequestFailedError) as info:
            await fal.result(EP, DONE_ID)
    assert len(seen) == 1 and info.value.status == 504


def test_one_client_serves_several_threads_and_loops(fake):
    fal = FalClient(fake.config(), transport=fake.transport())
    results: list[str] = []
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(3):
                results.append(asyncio.run(fal.status(EP, DONE_ID)).status)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and results == ["COMPLETED"] * 12


def test_base_urls_are_configurable(fake):
    fal = FalClient(fake.config())
    assert (fal.config.queue_base_url, fal.config.api_base_url) == (QUEUE, API)


async def test_a_proxy_500_on_result_is_a_server_error_not_a_failed_request(fake):
    def handler(request):  # no x-fal-request-id: not fal replaying the request's outcome
        return httpx.Response(500, text="upstream connect error")

    async with FalClient(fake.config(), transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.ServerError) as info:
            await fal.result(EP, DONE_ID)
    assert not isinstance(info.value, E.RequestFailedError)
    assert info.value.request_id == DONE_ID and "fix" not in info.value.hint.lower()


async def test_a_replayed_500_on_result_is_the_request_failing(fake):
    def handler(request):
        return httpx.Response(500, json={"detail": "model crashed"}, headers={"x-fal-request-id": "other"})

    async with FalClient(fake.config(), transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.RequestFailedError) as info:
            await fal.result(EP, DONE_ID)
    assert info.value.request_id == DONE_ID and DONE_ID in str(info.value)
