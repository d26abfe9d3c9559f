"""Error mapping from real-shaped fal.ai answers, through the client and httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest
from fal_fakes import KEY, FakeFal

from tools.fal import FalClient
from tools.fal import errors as E
from tools.fal.mapping import error_from_response

RID = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"


def _client(handler, **cfg) -> FalClient:
    fake = FakeFal()
    return FalClient(fake.config(FAL_MAX_RETRIES=0, **cfg), transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("status, body, headers, cls, fal_type", [
    (401, {"detail": "No user found for Key ID and Secret"}, {}, E.AuthError, None),
    (403, {"detail": "User is locked. Reason: Exhausted balance."}, {}, E.LockedAccountError,
     None),
    (403, {"detail": "Not allowed"}, {}, E.ForbiddenError, None),
    (404, {"detail": 'Application "nope" not found'}, {}, E.NotFoundError, None),
    (422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required",
                       "type": "missing"}]}, {}, E.ValidationError, None),
    (429, {"detail": "Too many requests"}, {"retry-after": "12"}, E.RateLimitedError, None),
    (503, {"detail": "Runner disconnected", "error_type": "runner_disconnected"}, {},
     E.ServerError, "runner_disconnected"),
    (504, {"detail": "Request timed out"}, {"x-fal-error-type": "request_timeout"},
     E.ServerError, "request_timeout"),
    (400, {"error": {"type": "validation_error", "message": "Invalid request parameters"}}, {},
     E.ValidationError, "validation_error"),
    (401, {"error": {"type": "authorization_error", "message": "Authentication required"}}, {},
     E.AuthError, "authorization_error"),
    (429, {"error": {"type": "rate_limited", "message": "Rate limit exceeded"}}, {},
     E.RateLimitedError, "rate_limited"),
    (500, {"error": {"type": "server_error", "message": "An unexpected error occurred",
                     "request_id": "req_abc"}}, {}, E.ServerError, "server_error"),
    (418, {"detail": "teapot"}, {}, E.FalError, None),
])
async def test_status_answers_map_to_typed_errors(status, body, headers, cls, fal_type):
    def handler(request):
        return httpx.Response(status, json=body, headers={"x-fal-request-id": "rq-1", **headers})

    async with _client(handler) as fal:
        with pytest.raises(E.FalError) as info:
            await fal.status("fal-ai/flux/dev", RID)
    err = info.value
    assert type(err) is cls
    assert err.status == status and err.fal_error_type == fal_type
    # The id asked about, not the error response's own x-fal-request-id.
    assert err.request_id == RID
    assert isinstance(err.__cause__, httpx.HTTPStatusError)
    assert err.to_dict()["type"] == cls.__name__
    if cls is E.RateLimitedError and headers:
        assert err.retry_after_s == 12.0
    if status == 422:
        assert err.detail[0]["loc"] == ["body", "prompt"]
        assert "prompt: field required" in str(err)


def test_platform_request_id_from_body_when_no_header():
    err = error_from_response(500, {}, b'{"error": {"type": "server_error", "message": "boom", '
                                       b'"request_id": "req_abc"}}')
    assert err.request_id == "req_abc" and "boom" in err.message


def test_non_json_error_body_is_quoted_briefly():
    err = error_from_response(502, {}, b"<html>" + b"nginx " * 200 + b"</html>")
    assert isinstance(err, E.ServerError) and len(err.message) < 400 and "nginx" in err.message


async def test_transport_failure_maps_and_chains():
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    async with _client(handler) as fal:
        with pytest.raises(E.TransportError) as info:
            await fal.status("fal-ai/flux/dev", RID)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_read_timeout_maps_to_timeout():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    async with _client(handler) as fal:
        with pytest.raises(E.FalTimeoutError) as info:
            await fal.result("fal-ai/flux/dev", RID)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


ALL_ERRORS = [E.FalError, E.InputError, E.AuthError, E.ForbiddenError, E.LockedAccountError,
              E.NotFoundError, E.ValidationError, E.RateLimitedError, E.ServerError,
              E.FalTimeoutError, E.TransportError, E.InvalidResponseError, E.RequestFailedError]


async def test_key_never_appears_in_errors_client_or_config():
    secret_half = KEY.split(":", 1)[1]

    def handler(request):  # a hostile server echoing the Authorization header back
        auth = request.headers["authorization"]
        return httpx.Response(int(request.url.params.get("code", "400")),
                              json={"detail": f"bad header {auth}", "error_type": auth},
                              headers={"x-fal-request-id": "r"})

    fal = _client(handler)
    raised: list[E.FalError] = []
    for code in (400, 401, 403, 404, 422, 429, 500, 503):
        with pytest.raises(E.FalError) as info:
            await fal._send("GET", f"http://queue.test/x?code={code}")
        raised.append(info.value)
    with pytest.raises(E.RequestFailedError) as info:
        await fal.result("fal-ai/flux/dev", RID)  # code 400 on the result path
    raised.append(info.value)
    raised += [cls(f"synthetic {cls.__name__}", status=1) for cls in ALL_ERRORS]
    assert {type(e) for e in raised} >= set(ALL_ERRORS) - {E.InputError}
    for err in raised:
        for text in (str(err), repr(err), str(err.to_dict())):
            assert KEY not in text and secret_half not in text
    assert raised[0].message.count("[REDACTED]") >= 1
    for text in (str(fal), repr(fal), repr(fal.config), str(fal.config)):
        assert KEY not in text and secret_half not in text
    await fal.aclose()
