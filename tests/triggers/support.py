"""Helpers for the trigger tests: signing keys, fal-shaped bodies, a JWKS served in-process, a clock."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
from nacl.signing import SigningKey

from tools.webhooks import JwksCache, signed_message


class Signer:
    """An Ed25519 key that signs webhooks the way fal does (shared/fal-api.md §4.4)."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()

    @property
    def jwk(self) -> dict[str, str]:
        raw = bytes(self.key.verify_key)
        return {"kty": "OKP", "crv": "Ed25519",
                "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}

    def headers(self, body: bytes, request_id: str, *, user_id: str = "user-1",
                timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = self.key.sign(signed_message(request_id, user_id, ts, body)).signature.hex()
        return {"X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": user_id,
                "X-Fal-Webhook-Timestamp": ts, "X-Fal-Webhook-Signature": sig}


def fal_body(request_id: str, *, status: str = "OK", payload: Any = None, **extra: Any) -> bytes:
    """A body shaped like fal's: sorted keys, json.dumps default separators."""
    if payload is None and status == "OK" and "payload_error" not in extra:
        payload = {"images": [{"url": "https://media.example/a.png", "content_type": "image/png"}],
                   "seed": 42}
    doc = {"error": None if status == "OK" else "Invalid status code: 422",
           "gateway_request_id": request_id, "payload": payload, "request_id": request_id,
           "status": status, **extra}
    return json.dumps(doc, sort_keys=True).encode()


class JwksServer:
    """A JWKS behind httpx.MockTransport whose keys tests can rotate; counts fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.keys = [s.jwk for s in signers]
        self.fetches = 0
        self.fail = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.fail:
            return httpx.Response(500, json={"error": "down"})
        return httpx.Response(200, json={"keys": list(self.keys)})

    def cache(self, **kwargs: Any) -> JwksCache:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return JwksCache("https://jwks.test/.well-known/jwks.json", client=client, **kwargs)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
