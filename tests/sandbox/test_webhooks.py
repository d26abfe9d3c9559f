"""Webhook delivery: signed as fal signs (verified here with PyNaCl against the JWKS), retried
with backoff on failure with the same request id, recorded for inspection."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import httpx
from nacl.signing import VerifyKey

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread

HOOK = "http://receiver.test/hook"


class Receiver:
    """A MockTransport that records every delivery and answers with scripted status codes."""

    def __init__(self, codes=()):
        self.codes = list(codes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.codes.pop(0) if self.codes else 200)


def keys_from_jwks(jwks: dict) -> list[VerifyKey]:
    out = []
    for key in jwks["keys"]:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and "=" not in key["x"]
        out.append(VerifyKey(base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))))
    return out


def verify(request: httpx.Request, keys: list[VerifyKey]) -> None:
    """§4.4, written independently of tools/webhooks.py."""
    h = request.headers
    ts = h["x-fal-webhook-timestamp"]
    assert abs(time.time() - int(ts)) <= 300
    message = "\n".join([h["x-fal-webhook-request-id"], h["x-fal-webhook-user-id"], ts,
                         hashlib.sha256(request.content).hexdigest()]).encode()
    signature = bytes.fromhex(h["x-fal-webhook-signature"])
    assert len(h["x-fal-webhook-signature"]) == 128
    errors = []
    for key in keys:
        try:
            key.verify(message, signature)
            return
        except Exception as exc:  # whatever this key raises, the next one may verify
            errors.append(exc)
    raise AssertionError(f"no JWKS key verifies the signature: {errors}")


def app_with(receiver: Receiver, **options):
    config = SandboxConfig(manual_clock=True, webhook_transport=httpx.MockTransport(receiver), **options)
    return create_app(config)


async def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb",
                             headers={"Authorization": "Key k:s"})


async def test_delivery_signed_and_verifiable_against_jwks():
    receiver = Receiver()
    app = app_with(receiver, signing_seed=bytes(range(32)))
    state = app.state.sandbox
    async with await _client(app) as c:
        sub = (await c.post("/fal-ai/flux/dev", params={"fal_webhook": HOOK}, json={"prompt": "fox"})).json()
        await state.advance(2)
        assert receiver.requests == []  # not finished yet
        await state.advance(10)
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        jwks = (await c.get("/.well-known/jwks.json")).json()
        verify(request, keys_from_jwks(jwks))
        assert jwks["keys"][0]["kid"]
        raw = request.content
        body = json.loads(raw)
        assert raw == json.dumps(body, sort_keys=True).encode()  # sorted keys, default separators
        assert body["status"] == "OK" and body["error"] is None and body["request_id"] == sub["request_id"]
        assert body["payload"]["images"][0]["content_type"] == "image/png"
        assert request.headers["x-fal-webhook-request-id"] == sub["request_id"]
        assert request.headers["content-type"] == "application/json"
        # A tampered body no longer verifies.
        forged = httpx.Request("POST", HOOK, headers=request.headers, content=raw.replace(b"OK", b"KO"))
        try:
            verify(forged, keys_from_jwks(jwks))
        except AssertionError:
            pass
        else:
            raise AssertionError("tampered body verified")
    await state.aclose()


async def test_seeded_key_is_stable_and_fresh_keys_differ():
    seeded = [create_app(SandboxConfig(signing_seed=b"\x01" * 32)).state.sandbox.signer.jwks() for _ in range(2)]
    assert seeded[0] == seeded[1]
    fresh = [create_app().state.sandbox.signer.jwks()["keys"][0]["x"] for _ in range(2)]
    assert fresh[0] != fresh[1]


async def test_error_webhook_for_bad_input():
    receiver = Receiver()
    app = app_with(receiver)
    async with await _client(app) as c:
        await c.post("/fal-ai/flux/dev", params={"fal_webhook": HOOK}, json={})
        await app.state.sandbox.advance(5)
    body = json.loads(receiver.requests[0].content)
    assert body["status"] == "ERROR" and body["error"] == "Invalid status code: 422"
    assert body["payload"]["detail"][0]["loc"] == ["body", "prompt"]
    await app.state.sandbox.aclose()


async def test_retries_with_backoff_same_request_id_fresh_signature():
    receiver = Receiver(codes=[500, 503])
    app = app_with(receiver, webhook_backoff_s=(5.0, 10.0))
    state = app.state.sandbox
    async with await _client(app) as c:
        sub = (await c.post("/fal-ai/flux/dev", params={"fal_webhook": HOOK}, json={"prompt": "x"})).json()
        await state.advance(10)
        assert len(receiver.requests) == 1
        await state.advance(4.9)
        assert len(receiver.requests) == 1  # backoff not over yet
        await state.advance(0.2)
        assert len(receiver.requests) == 2
        await state.advance(10)
        assert len(receiver.requests) == 3
        await state.advance(100)
        assert len(receiver.requests) == 3  # delivered: no more attempts
        jwks = (await c.get("/.well-known/jwks.json")).json()
        ids = {r.headers["x-fal-webhook-request-id"] for r in receiver.requests}
        assert ids == {sub["request_id"]}
        assert len({r.content for r in receiver.requests}) == 1  # body serialised once
        for r in receiver.requests:
            verify(r, keys_from_jwks(jwks))
        log = (await c.get("/_sandbox/webhooks")).json()["deliveries"][0]
        assert log["state"] == "delivered"
        assert [a["status_code"] for a in log["attempts"]] == [500, 503, 200]
        assert [a["ok"] for a in log["attempts"]] == [False, False, True]
    await state.aclose()


async def test_gives_up_after_max_attempts():
    receiver = Receiver(codes=[500] * 10)
    app = app_with(receiver, webhook_max_attempts=3, webhook_backoff_s=(1.0,))
    state = app.state.sandbox
    async with await _client(app) as c:
        await c.post("/fal-ai/flux/dev", params={"fal_webhook": HOOK}, json={"prompt": "x"})
        for _ in range(6):
            await state.advance(5)
    assert len(receiver.requests) == 3
    assert state.webhooks.deliveries[0].state == "failed"
    await state.aclose()


async def test_injected_webhook_failures_then_success():
    receiver = Receiver()
    app = app_with(receiver, webhook_backoff_s=(1.0,))
    state = app.state.sandbox
    async with await _client(app) as c:
        r = await c.post("/_sandbox/faults", json={"kind": "webhook_fail", "times": 2})
        assert r.status_code == 201
        sub = (await c.post("/fal-ai/flux/dev", params={"fal_webhook": HOOK}, json={"prompt": "x"})).json()
        await state.advance(10)
        await state.advance(1)
        await state.advance(1)
    # after_send: the receiver saw all three, same request id (duplicates to de-duplicate).
    assert len(receiver.requests) == 3
    assert {r.headers["x-fal-webhook-request-id"] for r in receiver.requests} == {sub["request_id"]}
    attempts = state.webhooks.deliveries[0].attempts
    assert [a.ok for a in attempts] == [False, False, True]
    assert attempts[0].error.startswith("injected")
    await state.aclose()


async def test_before_send_failure_sends_nothing():
    receiver = Receiver()
    app = app_with(receiver, webhook_backoff_s=(1.0,))
    state = app.state.sandbox
    state.faults.add("webhook_fail", times=1, mode="before_send")
    async with await _client(app) as c:
        await c.post("/fal-ai/flux/dev", params={"fal_webhook": HOOK}, json={"prompt": "x"})
        await state.advance(10)
        assert receiver.requests == []
        await state.advance(1)
        assert len(receiver.requests) == 1
    await state.aclose()


def test_real_delivery_over_loopback_to_a_second_server():
    # The receiver is another sandbox-free Starlette app on loopback; the sandbox runs on a speed clock.
    import threading

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    got: list[tuple[dict, bytes]] = []
    arrived = threading.Event()

    async def hook(request):
        got.append((dict(request.headers), await request.body()))
        arrived.set()
        return Response(status_code=204)

    import uvicorn

    from sandbox.server import _bind

    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
                                           log_level="warning"))
    server.install_signal_handlers = lambda: None
    import asyncio

    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        with start_in_thread(config=SandboxConfig(manual_clock=True)) as sb:
            r = httpx.post(f"{sb.url}/fal-ai/flux/schnell", params={"fal_webhook": f"http://127.0.0.1:{port}/hook"},
                           json={"prompt": "loop"})
            rid = r.json()["request_id"]
            sb.advance(5)
            assert arrived.wait(10)
            headers, body = got[0]
            jwks = httpx.get(f"{sb.url}/.well-known/jwks.json").json()
            verify(httpx.Request("POST", "http://x", headers=headers, content=body), keys_from_jwks(jwks))
            assert json.loads(body)["request_id"] == rid
    finally:
        server.should_exit = True
        thread.join(10)
