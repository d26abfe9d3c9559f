"""Platform API v1: catalogue, search, cursor pagination, pricing, estimates and their errors."""

from __future__ import annotations

import base64

import pytest

from sandbox import catalog

REQUIRED_META = {"display_name", "category", "description", "status", "tags", "updated_at", "is_favorited",
                 "thumbnail_url", "model_url", "date", "highlighted", "pinned"}


def test_catalogue_breadth():
    eps = catalog.endpoints()
    assert len(eps) >= 50
    cats = set(catalog.categories())
    assert {"text-to-image", "image-to-image", "image-to-video", "text-to-video", "text-to-speech",
            "speech-to-text", "text-to-audio", "image-to-3d", "training"} <= cats
    assert len({e.endpoint_id for e in eps}) == len(eps)
    for e in eps:
        assert e.unit_price >= 0 and e.duration_s > 0 and e.historical_price >= 0


async def test_pagination_walks_every_model_once(client):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/v1/models", params=params)
        assert r.status_code == 200
        body = r.json()
        assert len(body["models"]) <= 7 and body["has_more"] == (body["next_cursor"] is not None)
        seen += [m["endpoint_id"] for m in body["models"]]
        pages += 1
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
        assert base64.b64decode(cursor).decode().isdigit()  # opaque, but encodes the page number
    assert seen == [e.endpoint_id for e in catalog.endpoints()]
    assert pages == -(-len(seen) // 7)


async def test_metadata_complete_and_is_favorited_depends_on_auth(client, app):
    body = (await client.get("/v1/models", params={"limit": 3})).json()
    for m in body["models"]:
        assert REQUIRED_META <= set(m["metadata"]) and m["metadata"]["is_favorited"] is False
        assert "openapi" not in m
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as anon:
        m = (await anon.get("/v1/models", params={"limit": 1})).json()["models"][0]
        assert m["metadata"]["is_favorited"] is None


async def test_find_by_repeated_and_comma_ids(client):
    r = await client.get("/v1/models", params=[("endpoint_id", "fal-ai/flux/dev"),
                                               ("endpoint_id", "fal-ai/veo3,fal-ai/whisper")])
    ids = [m["endpoint_id"] for m in r.json()["models"]]
    assert ids == ["fal-ai/flux/dev", "fal-ai/veo3", "fal-ai/whisper"]


async def test_search_q_category_status(client):
    body = (await client.get("/v1/models", params={"q": "kling", "category": "image-to-video"})).json()
    assert body["models"] and all("kling" in m["endpoint_id"] and m["metadata"]["category"] == "image-to-video"
                                  for m in body["models"])
    dep = (await client.get("/v1/models", params={"status": "deprecated"})).json()["models"]
    assert dep and all(m["metadata"]["status"] == "deprecated" for m in dep)
    none = (await client.get("/v1/models", params={"q": "zzzz-no-such-thing"})).json()
    assert none == {"models": [], "next_cursor": None, "has_more": False}


async def test_expand_openapi_and_enterprise_status(client):
    r = await client.get("/v1/models", params=[("endpoint_id", "fal-ai/flux/dev"), ("expand", "openapi-3.0"),
                                               ("expand", "enterprise_status")])
    model = r.json()["models"][0]
    doc = model["openapi"]
    assert doc["openapi"].startswith("3.0")
    assert "prompt" in doc["components"]["schemas"]["Input"]["required"]
    assert "/fal-ai/flux/dev" in doc["paths"]
    assert model["enterprise_status"] == "ready"


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "bm9wZQ=="},
                                    {"status": "old"}, {"expand": "bogus"},
                                    {"endpoint_id": ",".join(f"a/{i}" for i in range(51))}])
async def test_models_validation_errors(client, params):
    r = await client.get("/v1/models", params=params)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "validation_error" and err["message"]


async def test_pricing(client):
    r = await client.get("/v1/models/pricing", params={"endpoint_id": "fal-ai/flux/dev,fal-ai/veo3"})
    body = r.json()
    assert r.status_code == 200 and body["has_more"] is False and body["next_cursor"] is None
    assert body["prices"][0] == {"endpoint_id": "fal-ai/flux/dev", "unit_price": 0.025, "unit": "image",
                                 "currency": "USD"}
    assert body["prices"][1]["unit"] == "seconds"
    r = await client.get("/v1/models/pricing", params=[("endpoint_id", "fal-ai/flux/dev"),
                                                       ("endpoint_id", "fal-ai/whisper")])
    assert len(r.json()["prices"]) == 2


async def test_pricing_errors(client):
    r = await client.get("/v1/models/pricing")
    assert r.status_code == 400 and r.json()["error"]["type"] == "validation_error"
    r = await client.get("/v1/models/pricing", params={"endpoint_id": "fal-ai/nope"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    r = await client.get("/v1/models/pricing", params={"endpoint_id": ",".join(["fal-ai/flux/dev"] * 3 +
                                                                               [f"x/{i}" for i in range(50)])})
    assert r.status_code == 400


async def test_estimate_both_types(client):
    dev, veo = catalog.by_id()["fal-ai/flux/dev"], catalog.by_id()["fal-ai/veo3"]
    r = await client.post("/v1/models/pricing/estimate", json={
        "estimate_type": "historical_api_price",
        "endpoints": {"fal-ai/flux/dev": {"call_quantity": 100}, "fal-ai/veo3": {"call_quantity": 2}}})
    body = r.json()
    assert r.status_code == 200 and body["estimate_type"] == "historical_api_price" and body["currency"] == "USD"
    assert body["total_cost"] == pytest.approx(dev.historical_price * 100 + veo.historical_price * 2)
    r = await client.post("/v1/models/pricing/estimate", json={
        "estimate_type": "unit_price", "endpoints": {"fal-ai/veo3": {"unit_quantity": 8}}})
    assert r.json()["total_cost"] == pytest.approx(0.75 * 8)


@pytest.mark.parametrize("body,status", [
    ({"estimate_type": "guess", "endpoints": {"fal-ai/flux/dev": {"call_quantity": 1}}}, 400),
    ({"estimate_type": "historical_api_price"}, 400),
    ({"estimate_type": "historical_api_price", "endpoints": {}}, 400),
    ({"estimate_type": "historical_api_price", "endpoints": {"fal-ai/flux/dev": {"call_quantity": 0}}}, 400),
    ({"estimate_type": "historical_api_price", "endpoints": {"fal-ai/flux/dev": {"call_quantity": 1.5}}}, 400),
    ({"estimate_type": "historical_api_price", "endpoints": {"fal-ai/flux/dev": {"unit_quantity": 1}}}, 400),
    ({"estimate_type": "unit_price", "endpoints": {"fal-ai/flux/dev": {"unit_quantity": 0}}}, 400),
    ({"estimate_type": "unit_price", "endpoints": {"fal-ai/flux/dev": {"unit_quantity": "3"}}}, 400),
    ({"estimate_type": "unit_price", "endpoints": {"fal-ai/flux/dev": 3}}, 400),
    ({"estimate_type": "unit_price", "endpoints": {"fal-ai/unknown": {"unit_quantity": 1}}}, 404),
])
async def test_estimate_validation(client, body, status):
    r = await client.post("/v1/models/pricing/estimate", json=body)
    assert r.status_code == status
    assert set(r.json()["error"]) >= {"type", "message"}
