"""Error shapes, auth rules, and bad input of every kind never answered with a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.auth import MALFORMED
from tests.sandbox.conftest import make_app


def anon_client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test")


@pytest.mark.parametrize("header", ["Key a:b", "Key some-id:some:secret-x".replace(":secret-x", "x"),
                                    "Bearer token123"])
async def test_well_formed_keys_accepted(app, header):
    async with anon_client(app) as c:
        r = await c.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers={"Authorization": header})
        assert r.status_code == 200


@pytest.mark.parametrize("header", ["Key nocolon", "Key :secret", "Key id:", "Basic abc", "Key a:b:c", "Token x"])
async def test_malformed_key_401_with_fal_message(app, header):
    async with anon_client(app) as c:
        r = await c.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers={"Authorization": header})
        assert r.status_code == 401
        assert r.json()["detail"] == MALFORMED
        assert r.headers["x-fal-error-type"] == r.json()["error_type"]
        r = await c.get("/v1/models/pricing", params={"endpoint_id": "fal-ai/flux/dev"},
                        headers={"Authorization": header})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authorization_error"


async def test_missing_key_queue_ok_platform_pricing_refused(app):
    async with anon_client(app) as c:
        assert (await c.post("/fal-ai/flux/dev", json={"prompt": "x"})).status_code == 200
        assert (await c.get("/v1/models")).status_code == 200
        r = await c.get("/v1/models/pricing", params={"endpoint_id": "fal-ai/flux/dev"})
        assert r.status_code == 401 and r.json()["error"]["message"] == "Authentication required"
        r = await c.post("/v1/models/pricing/estimate", json={})
        assert r.status_code == 401


async def test_locked_key_403():
    app = make_app(locked_key_ids=frozenset({"locked-id"}))
    async with anon_client(app) as c:
        r = await c.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers={"Authorization": "Key locked-id:s"})
        assert r.status_code == 403 and r.json()["detail"].startswith("User is locked. Reason: ")
        r = await c.get("/v1/models/pricing", params={"endpoint_id": "fal-ai/flux/dev"},
                        headers={"Authorization": "Key locked-id:s"})
        assert r.status_code == 403 and r.json()["error"]["type"] == "authorization_error"
        r = await c.post("/fal-ai/flux/dev", json={"prompt": "x"}, headers={"Authorization": "Key fine:s"})
        assert r.status_code == 200


async def test_unknown_endpoint_404_with_detail(client):
    r = await client.post("/fal-ai/not-a-model", json={"prompt": "x"})
    assert r.status_code == 404 and r.json()["detail"] == 'Application "not-a-model" not found'
    assert r.headers["x-fal-error-type"] == "application_not_found" and "x-fal-request-id" in r.headers
    assert (await client.get("/v1/nothing-here")).json()["error"]["type"] == "not_found"
    assert (await client.get("/_sandbox/nothing")).status_code == 404


async def test_bad_json_422(client):
    r = await client.post("/fal-ai/flux/dev", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = await client.post("/fal-ai/flux/dev", content=b"\xff\xfe\x00")
    assert r.status_code == 422


async def test_oversized_body_413():
    app = make_app(max_body_bytes=1000)
    async with anon_client(app) as c:
        r = await c.post("/fal-ai/flux/dev", json={"prompt": "x" * 2000})
        assert r.status_code == 413 and r.json()["error_type"] == "payload_too_large"


async def test_bad_webhook_url_422(client):
    r = await client.post("/fal-ai/flux/dev", params={"fal_webhook": "not a url"}, json={"prompt": "x"})
    assert r.status_code == 422


BAD_REQUESTS = [
    ("GET", "/", None), ("DELETE", "/fal-ai/flux/dev", None), ("GET", "/fal-ai/flux/dev", None),
    ("POST", "/fal-ai/flux/dev", b"[1, 2"), ("POST", "/fal-ai/flux/dev", b""),
    ("PUT", "/fal-ai/flux/requests//cancel", None), ("GET", "/fal-ai/flux/requests/x/status/stream/extra", None),
    ("GET", "/v1/models?limit=abc", None), ("GET", "/v1/models?limit=0", None), ("GET", "/v1/models?cursor=%%%", None),
    ("GET", "/v1/models?cursor=LTE=", None), ("GET", "/v1/models?status=gone", None),
    ("GET", "/v1/models?expand=everything", None), ("POST", "/v1/models", None),
    ("POST", "/v1/models/pricing/estimate", b"{"), ("POST", "/v1/models/pricing/estimate", b"[]"),
    ("POST", "/_sandbox/clock/advance", b"{}"), ("POST", "/_sandbox/clock/advance", b'{"seconds": -1}'),
    ("POST", "/_sandbox/clock/speed", b'{"speed": 0}'), ("POST", "/_sandbox/faults", b'{"kind": "nope"}'),
    ("POST", "/_sandbox/faults", b'{"kind": "delay", "bogus": 1}'), ("DELETE", "/_sandbox/faults/abc", None),
    ("GET", "/_media/../../etc/passwd", None), ("GET", "/_media/unknown.png", None),
    ("POST", "/1234-legacy-app", b"{}"), ("POST", "/single", b"{}"),
]


@pytest.mark.parametrize("method,path,body", BAD_REQUESTS)
async def test_bad_input_never_500(client, method, path, body):
    r = await client.request(method, path, content=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert "detail" in data or "error" in data


@pytest.mark.parametrize("body", [["a list"], None, "string", 7])
async def test_non_object_json_body_fails_at_run_time(client, state, body):
    # Valid JSON that is not an object passes the gateway and fails in the "model", as on fal.
    r = await client.post("/fal-ai/flux/dev", content=json.dumps(body).encode())
    assert r.status_code == 200
    await state.advance(5)
    r = await client.get(r.json()["response_url"])
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "model_attributes_type"
