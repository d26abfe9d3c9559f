"""The listener's case matrix, in-process over httpx.ASGITransport with generated keys."""

from __future__ import annotations

import json
import time

import pytest

from agent.triggers.rules import Rule
from agent.triggers.server import WEBHOOK_PATH
from tests.triggers.support import FakeClock, Signer, failing_inserts, fal_body


@pytest.fixture(params=["thread", "process"])
def check(request) -> str:
    """The whole matrix runs against both the in-process intake and the checker process."""
    return request.param

HEADERS = ("X-Fal-Webhook-Request-Id", "X-Fal-Webhook-User-Id", "X-Fal-Webhook-Timestamp",
           "X-Fal-Webhook-Signature")


async def post(client, body: bytes, headers: dict, query: str = ""):
    return await client.post(WEBHOOK_PATH + query, content=body,
                             headers={"Content-Type": "application/json", **headers})


async def test_valid_webhook_is_stored_before_the_200(make_listener, signer, inbox):
    _, client = make_listener()
    body = fal_body("req-1")
    response = await post(client, body, signer.headers(body, "req-1"), "?endpoint_id=fal-ai/flux/dev")
    assert response.status_code == 200
    assert response.json() == {"received": True}
    row = inbox.get("req-1")
    # No rules: nothing will ever run for it, so it is stored already settled.
    assert row is not None and row.state == "done" and row.outcome == "no rule matched"
    assert row.status == "OK"
    assert row.body == body  # the raw bytes, as signed
    assert row.endpoint_id == "fal-ai/flux/dev" and row.user_id == "user-1"


async def test_with_rules_a_stored_webhook_waits_for_the_worker(make_listener, signer, inbox):
    _, client = make_listener(rules=[Rule(name="r", endpoint="fal-ai/kling/*", prompt="p")])
    body = fal_body("req-2")
    response = await post(client, body, signer.headers(body, "req-2"))
    assert response.status_code == 200
    row = inbox.get("req-2")
    assert row is not None and row.state == "pending" and row.outcome is None


async def test_error_delivery_and_null_payload_are_accepted(make_listener, signer, inbox):
    _, client = make_listener()
    for rid, body in (("e1", fal_body("e1", status="ERROR", payload={"detail": []})),
                      ("e2", fal_body("e2", payload_error="Response payload is not JSON serializable."))):
        assert (await post(client, body, signer.headers(body, rid))).status_code == 200
    assert inbox.get("e1").status == "ERROR" and inbox.get("e2") is not None


@pytest.mark.parametrize("missing", HEADERS)
async def test_each_missing_header_is_401(make_listener, signer, inbox, missing):
    _, client = make_listener()
    body = fal_body("req-1")
    headers = {k: v for k, v in signer.headers(body, "req-1").items() if k != missing}
    response = await post(client, body, headers)
    assert response.status_code == 401
    assert response.json() == {"error": "missing_header"}
    assert inbox.count() == 0


def _tamper(kind: str, body: bytes, headers: dict) -> tuple[bytes, dict]:
    h = dict(headers)
    if kind == "malformed hex":
        h["X-Fal-Webhook-Signature"] = "g" * 128
    elif kind == "body":
        body = body.replace(b'"seed": 42', b'"seed": 43')
    elif kind == "request id":
        h["X-Fal-Webhook-Request-Id"] = "req-2"
    elif kind == "user id":
        h["X-Fal-Webhook-User-Id"] = "user-2"
    elif kind == "timestamp":
        # earlier, not later: a signature newer than the keys is a possible rotation (503)
        h["X-Fal-Webhook-Timestamp"] = str(int(h["X-Fal-Webhook-Timestamp"]) - 1)
    return body, h


@pytest.mark.parametrize("kind,reason", [
    ("malformed hex", "bad_signature_encoding"), ("body", "bad_signature"),
    ("request id", "bad_signature"), ("user id", "bad_signature"), ("timestamp", "bad_signature"),
])
async def test_tampering_is_401_with_only_a_reason(make_listener, signer, inbox, kind, reason):
    _, client = make_listener()
    body = fal_body("req-1")
    body, headers = _tamper(kind, body, signer.headers(body, "req-1"))
    response = await post(client, body, headers)
    assert response.status_code == 401
    assert response.content == json.dumps({"error": reason}, separators=(",", ":")).encode()
    assert inbox.count() == 0


async def test_wrong_key_is_401(make_listener, inbox):
    _, client = make_listener()
    body = fal_body("req-1")
    response = await post(client, body, Signer().headers(body, "req-1"))
    assert (response.status_code, response.json()) == (401, {"error": "bad_signature"})
    assert inbox.count() == 0


# Well past the 300 s window: the listener checks against its own clock a moment later (and
# the checker process may still be starting); the exact edges are in test_verify.py.
@pytest.mark.parametrize("offset", [-330, 330, -86_400])
async def test_too_old_or_too_far_ahead_is_401(make_listener, signer, inbox, offset):
    _, client = make_listener()
    body = fal_body("req-1")
    response = await post(client, body, signer.headers(body, "req-1", timestamp=int(time.time()) + offset))
    assert (response.status_code, response.json()) == (401, {"error": "timestamp_out_of_range"})
    assert inbox.count() == 0


async def test_replay_answers_200_duplicate_and_runs_no_second_action(make_listener, signer, inbox):
    calls = []

    async def runner(persona, text, approve):
        calls.append(text)
        return "ok"

    rule = Rule(name="r", prompt="look at {request_id}")
    listener, client = make_listener(rules=[rule], prompt_runner=runner)
    body = fal_body("req-1")
    headers = signer.headers(body, "req-1")
    first = await post(client, body, headers)
    await listener.worker.process_due()
    replay = await post(client, body, headers)  # the same bytes again
    resent = await post(client, body, signer.headers(body, "req-1"))  # fal's retry: fresh signature
    await listener.worker.process_due()
    assert first.json() == {"received": True}
    assert (replay.status_code, replay.json()) == (200, {"duplicate": True})
    assert (resent.status_code, resent.json()) == (200, {"duplicate": True})
    assert calls == ["look at req-1"]
    assert inbox.count() == 1 and inbox.get("req-1").state == "done"


async def test_key_rotation_accepted_after_refetch_and_refetch_rate_limited(make_listener, signer, jwks_server):
    clock = FakeClock(0)
    listener, client = make_listener(jwks=jwks_server.cache(clock=clock))
    body = fal_body("a")
    assert (await post(client, body, signer.headers(body, "a"))).status_code == 200
    assert jwks_server.fetches == 1
    rotated = Signer()
    jwks_server.keys.append(rotated.jwk)
    clock.advance(61)
    body = fal_body("b")
    assert (await post(client, body, rotated.headers(body, "b"))).status_code == 200
    assert jwks_server.fetches == 2
    forger = Signer()
    for i in range(10):  # a flood of bad signatures may not hammer the JWKS
        body = fal_body(f"f{i}")
        assert (await post(client, body, forger.headers(body, f"f{i}"))).status_code == 401
    assert jwks_server.fetches == 2


async def test_a_rotated_key_inside_the_refetch_window_answers_503_with_retry_after(make_listener, signer,
                                                                                   jwks_server, inbox):
    """Issue 12 finding 9: it was 401 for up to a minute after the last fetch; fal's retry now gets in."""
    clock = FakeClock(0)
    listener, client = make_listener(jwks=jwks_server.cache(clock=clock, min_refetch_s=60))
    body = fal_body("a")
    assert (await post(client, body, signer.headers(body, "a"))).status_code == 200
    rotated = Signer()
    jwks_server.keys.append(rotated.jwk)
    clock.advance(25)  # the keys were fetched 25 s before this delivery was signed
    body = fal_body("b")
    headers = rotated.headers(body, "b")
    response = await post(client, body, headers)
    assert response.status_code == 503
    assert response.json() == {"error": "keys_may_have_rotated", "detail": "signing keys may have rotated; retry"}
    assert response.headers["retry-after"] == "35"
    assert jwks_server.fetches == 1 and inbox.get("b") is None
    clock.advance(35)
    again = await post(client, body, rotated.headers(body, "b"))  # fal's retry, re-signed
    assert (again.status_code, again.json()) == (200, {"received": True})
    assert jwks_server.fetches == 2


async def test_oversize_is_413_by_content_length_and_chunked_is_411(make_listener, signer, inbox):
    _, client = make_listener(max_body_bytes=1000)
    body = fal_body("big", payload={"blob": "x" * 2000})
    response = await post(client, body, signer.headers(body, "big"))
    assert (response.status_code, response.json()) == (413, {"error": "too_large"})

    async def chunks():  # no Content-Length: refused before the body is read (issue 12)
        for _ in range(10):
            yield b"x" * 300

    response = await client.post(WEBHOOK_PATH, content=chunks(), headers=signer.headers(b"", "big"))
    assert (response.status_code, response.json()) == (411, {"error": "length_required"})
    assert inbox.count() == 0


async def test_validly_signed_non_json_is_422(make_listener, signer, inbox):
    _, client = make_listener()
    for body in (b"not json", b"\xff\xfe", b'[1, 2]', b'{"status": NaN}'):
        response = await post(client, body, signer.headers(body, "req-1"))
        assert response.status_code == 422, body
        assert response.json()["error"] in ("invalid_json", "invalid_payload")
    assert inbox.count() == 0


@pytest.mark.parametrize("doc,reason", [
    ({"request_id": "req-1", "status": "DONE", "payload": {}}, "invalid_payload"),
    ({"request_id": "req-1", "status": "OK", "payload": None}, "invalid_payload"),
    ({"status": "OK", "payload": {}}, "invalid_payload"),
    ({"request_id": "other", "status": "OK", "payload": {}}, "request_id_mismatch"),
])
async def test_valid_signature_over_invalid_payload_is_422(make_listener, signer, inbox, doc, reason):
    _, client = make_listener()
    body = json.dumps(doc).encode()
    response = await post(client, body, signer.headers(body, "req-1"))
    assert (response.status_code, response.json()) == (422, {"error": reason})
    assert inbox.count() == 0


async def test_jwks_down_is_503_so_fal_retries(make_listener, signer, jwks_server, inbox):
    jwks_server.fail = True
    _, client = make_listener()
    body = fal_body("req-1")
    response = await post(client, body, signer.headers(body, "req-1"))
    assert (response.status_code, response.json()) == (503, {"error": "keys_unavailable"})
    assert inbox.count() == 0


async def test_storage_failure_is_503_never_a_false_ack(make_listener, signer, inbox):
    _, client = make_listener()
    inbox.count()  # create the schema, then break every insert (in whichever process stores)
    failing_inserts(inbox.path, True)
    body = fal_body("req-1")
    response = await post(client, body, signer.headers(body, "req-1"))
    assert (response.status_code, response.json()) == (503, {"error": "storage_unavailable"})
    assert inbox.get("req-1") is None


async def test_healthz_and_unknown_endpoint_query_is_ignored(make_listener, signer, inbox):
    _, client = make_listener()
    assert (await client.get("/healthz")).json()["ok"] is True
    body = fal_body("req-1")
    response = await post(client, body, signer.headers(body, "req-1"), "?endpoint_id=../../etc%20x")
    assert response.status_code == 200
    assert inbox.get("req-1").endpoint_id is None
    assert (await client.get("/healthz")).json()["received"] == 1
