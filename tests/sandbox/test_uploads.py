"""The CDN upload emulation (fal-api.md 3.6), in process on a manual clock."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import httpx
import pytest

from tests.sandbox.conftest import make_app

CDN_TOKEN = "/storage/auth/token"


async def _token(client: httpx.AsyncClient) -> dict:
    r = await client.post(CDN_TOKEN, params={"storage_type": "fal-cdn-v3"}, json={})
    assert r.status_code == 200, r.text
    return r.json()


def _auth(tok: dict) -> dict[str, str]:
    return {"Authorization": f"{tok['token_type']} {tok['token']}"}


async def _small(client, tok, data: bytes, name="a.png", kind="image/png", **headers):
    return await client.post("/files/upload", content=data,
                             headers={**_auth(tok), "Content-Type": kind, "X-Fal-File-Name": name, **headers})


async def test_token_answer_shape_and_key_required(client, state):
    tok = await _token(client)
    assert set(tok) == {"token", "token_type", "base_url", "expires_at"}
    assert tok["token_type"] == "Bearer" and tok["base_url"] == "http://sandbox.test"
    expires = dt.datetime.fromisoformat(tok["expires_at"])
    assert expires.tzinfo is not None  # fal_client compares it with an aware datetime
    assert expires.timestamp() == pytest.approx(state.clock.now() + state.config.upload_token_ttl_s, abs=1)
    r = await client.post(CDN_TOKEN, params={"storage_type": "fal-cdn-v3"}, json={},
                          headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["error_type"] == "authorization_error"
    r = await client.post(CDN_TOKEN, params={"storage_type": "s3"}, json={})
    assert r.status_code == 400 and "storage_type" in r.json()["detail"]


async def test_small_upload_roundtrip_with_content_type_and_name(client, state):
    tok = await _token(client)
    data = bytes(range(256)) * 40
    r = await _small(client, tok, data, name="my photo?.png")
    assert r.status_code == 200, r.text
    url = r.json()["access_url"]
    assert url.startswith("http://sandbox.test/files/sandbox/") and url.endswith("/my_photo_.png")
    got = await client.get(url, headers={"Authorization": ""})  # the CDN serves without auth
    assert got.status_code == 200 and got.content == data and got.headers["content-type"] == "image/png"
    snap = (await client.get("/_sandbox/uploads")).json()
    (entry,) = snap["uploads"]
    assert entry["via"] == "cdn" and entry["size"] == len(data) and entry["complete"] is True
    assert snap["tokens_issued"] == 1 and snap["used_bytes"] == len(data)


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Key id:secret"])
async def test_upload_refuses_missing_or_wrong_token_with_401(client, state, header):
    headers = {"Content-Type": "text/plain", "Authorization": header or ""}
    r = await client.post("/files/upload", content=b"x", headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert isinstance(body["detail"], str) and body["error_type"] == "authorization_error"
    assert r.headers["x-fal-error-type"] == "authorization_error"
    assert not state.uploads.files


async def test_expired_token_is_refused(client, state):
    tok = await _token(client)
    await state.advance(state.config.upload_token_ttl_s + 1)
    r = await _small(client, tok, b"late")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    fresh = await _token(client)
    assert (await _small(client, fresh, b"late")).status_code == 200


async def test_lifecycle_is_recorded_and_the_file_expires(client, state):
    tok = await _token(client)
    life = json.dumps({"expiration_duration_seconds": 60, "initial_acl": {"default": "allow"}})
    r = await _small(client, tok, b"short-lived", **{"X-Fal-Object-Lifecycle": life})
    url = r.json()["access_url"]
    (entry,) = (await client.get("/_sandbox/uploads")).json()["uploads"]
    assert entry["lifecycle"]["expiration_duration_seconds"] == 60
    assert entry["expires_at"] == pytest.approx(state.clock.now() + 60)
    assert (await client.get(url)).status_code == 200
    path = next(iter(state.uploads.files.values())).path
    await state.advance(61)
    assert (await client.get(url)).status_code == 404
    assert not path.exists() and state.uploads.used_bytes == 0
    bad = await _small(client, tok, b"x", **{"X-Fal-Object-Lifecycle": "[1]"})
    assert bad.status_code == 400


async def test_multipart_parts_etags_complete_and_part_count(client, state):
    tok = await _token(client)
    r = await client.post("/files/upload/multipart",
                          headers={**_auth(tok), "Content-Type": "video/mp4", "X-Fal-File-Name": "clip.mp4"})
    assert r.status_code == 200, r.text
    created = r.json()
    url, upload_id = created["access_url"], created["uploadId"]
    chunks = [bytes([n]) * (1000 + n) for n in (1, 2, 3)]
    etags = {}
    for n in (3, 1, 2):  # any order, as fal_client's ten workers send them
        put = await client.put(f"{url}/multipart/{upload_id}/{n}", content=chunks[n - 1], headers=_auth(tok))
        assert put.status_code == 200
        etags[n] = put.headers["etag"]
        assert etags[n] == f'"{hashlib.md5(chunks[n - 1]).hexdigest()}"'
    assert (await client.get(url)).status_code == 404  # not complete yet
    again = await client.put(f"{url}/multipart/{upload_id}/2", content=chunks[1], headers=_auth(tok))
    assert again.status_code == 200  # a re-sent part replaces the first copy

    parts = [{"partNumber": n, "etag": etags[n]} for n in (2, 3, 1)]
    wrong = await client.post(f"{url}/multipart/{upload_id}/complete", headers=_auth(tok),
                              json={"parts": [{**parts[0], "etag": '"0000"'}, *parts[1:]]})
    assert wrong.status_code == 400 and "etag" in wrong.json()["detail"]
    missing = await client.post(f"{url}/multipart/{upload_id}/complete", headers=_auth(tok),
                                json={"parts": [*parts, {"partNumber": 4, "etag": "x"}]})
    assert missing.status_code == 400 and "part 4" in missing.json()["detail"]

    done = await client.post(f"{url}/multipart/{upload_id}/complete", headers=_auth(tok), json={"parts": parts})
    assert done.status_code == 200 and done.json() == {"access_url": url}
    got = await client.get(url)
    assert got.content == b"".join(chunks) and got.headers["content-type"] == "video/mp4"
    twice = await client.post(f"{url}/multipart/{upload_id}/complete", headers=_auth(tok), json={"parts": parts})
    assert twice.status_code == 200 and twice.json() == {"access_url": url}

    snap = (await client.get("/_sandbox/uploads")).json()
    assert snap["parts_received"] == 4 and snap["uploads"][0]["parts_received"] == 4
    assert snap["uploads"][0]["part_numbers"] == [1, 2, 3] and snap["uploads"][0]["size"] == sum(map(len, chunks))
    assert snap["used_bytes"] == sum(map(len, chunks))  # the part files are gone
    state_view = (await client.get("/_sandbox/state")).json()
    assert state_view["upload_parts_received"] == 4 and state_view["uploads"] == 1


async def test_multipart_part_needs_token_and_known_upload(client, state):
    tok = await _token(client)
    created = (await client.post("/files/upload/multipart", headers={**_auth(tok), "Content-Type": "a/b"})).json()
    url, upload_id = created["access_url"], created["uploadId"]
    assert (await client.put(f"{url}/multipart/{upload_id}/1", content=b"x",
                             headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await client.put(f"{url}/multipart/other/1", content=b"x", headers=_auth(tok))).status_code == 404
    assert (await client.put(f"{url}/multipart/{upload_id}/0", content=b"x", headers=_auth(tok))).status_code == 400


async def test_a_server_error_fault_hits_one_part_only(client, state):
    tok = await _token(client)
    created = (await client.post("/files/upload/multipart", headers={**_auth(tok), "Content-Type": "a/b"})).json()
    url, upload_id = created["access_url"], created["uploadId"]
    r = await client.post("/_sandbox/faults", json={"kind": "server_error", "ops": ["upload_part"], "times": 1})
    assert r.status_code == 201
    first = await client.put(f"{url}/multipart/{upload_id}/1", content=b"a", headers=_auth(tok))
    assert first.status_code == 503 and first.json()["error_type"] == "runner_disconnected"
    second = await client.put(f"{url}/multipart/{upload_id}/1", content=b"a", headers=_auth(tok))
    assert second.status_code == 200
    assert state.uploads.parts_received == 1  # the refused part was not counted


async def test_rate_limit_fault_on_the_token_call(client, state):
    await client.post("/_sandbox/faults", json={"kind": "rate_limit", "ops": ["upload_token"], "retry_after": 2})
    r = await client.post(CDN_TOKEN, params={"storage_type": "fal-cdn-v3"}, json={})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert (await client.post(CDN_TOKEN, params={"storage_type": "fal-cdn-v3"}, json={})).status_code == 200


async def test_storage_fallback_initiate_and_put(client, state):
    life = json.dumps({"expiration_duration_seconds": 3600})
    r = await client.post("/storage/upload/initiate", params={"storage_type": "gcs"},
                          json={"file_name": "notes.txt", "content_type": "text/plain"},
                          headers={"X-Fal-Object-Lifecycle-Preference": life})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"upload_url", "file_url"}
    assert (await client.get(body["file_url"])).status_code == 404  # nothing PUT yet
    forged = body["upload_url"].split("?")[0] + "?signature=forged"
    assert (await client.put(forged, content=b"evil", headers={"Authorization": ""})).status_code == 403
    put = await client.put(body["upload_url"], content=b"some notes", headers={"Authorization": "",
                                                                                 "Content-Type": "text/plain"})
    assert put.status_code == 200
    got = await client.get(body["file_url"])
    assert got.content == b"some notes" and got.headers["content-type"].startswith("text/plain")
    (entry,) = (await client.get("/_sandbox/uploads")).json()["uploads"]
    assert entry["via"] == "storage" and entry["expires_at"] == pytest.approx(state.clock.now() + 3600)
    r = await client.post("/storage/upload/initiate", params={"storage_type": "gcs"}, json={"file_name": "x"})
    assert r.status_code == 422


async def test_size_limits_413_and_store_full_507(tmp_path):
    app = make_app(upload_max_bytes=1000, upload_store_max_bytes=1500, uploads_dir=tmp_path / "up")
    state = app.state.sandbox
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test",
                                 headers={"Authorization": "Key a:b"}) as c:
        tok = await _token(c)
        assert (await _small(c, tok, b"x" * 1001)).status_code == 413
        assert (await _small(c, tok, b"x" * 900)).status_code == 200
        full = await _small(c, tok, b"y" * 900)
        assert full.status_code == 507 and full.json()["error_type"] == "insufficient_storage"
        assert state.uploads.used_bytes == 900 and len(list((tmp_path / "up").iterdir())) == 1
        await c.post("/_sandbox/reset")
        assert state.uploads.used_bytes == 0 and not list((tmp_path / "up").iterdir())
    await state.aclose()


async def test_unknown_upload_routes(client):
    assert (await client.get("/files/sandbox/nope/x.png")).status_code == 404
    assert (await client.delete("/files/upload")).status_code == 405
