"""End to end on the real sandbox (loopback uvicorn thread, manual clock): uploads, a part
failing and being re-sent, lifecycle, token expiry, and schema checks from its OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from tools.catalog import build_fal_tool
from tools.fal import (
    ArgumentsInvalid,
    FalClient,
    FalConfig,
    InputSchema,
    SchemaUnavailable,
    UploadFileError,
)
from tools.fal.upload import Uploader

KEY = "e2e-upload:secret-value-789"
KIB = 1024


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    sb = start_in_thread(host="127.0.0.1", port=0,
                         config=SandboxConfig(manual_clock=True, upload_token_ttl_s=600))
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def sb(sandbox: RunningSandbox) -> RunningSandbox:
    httpx.delete(sandbox.url + "/_sandbox/faults")
    return sandbox


def client(sb: RunningSandbox, *, small_parts: bool = True, **extra: object) -> FalClient:
    fal = FalClient(FalConfig(_env_file=None, FAL_KEY=KEY, FAL_QUEUE_BASE_URL=sb.url,
                              FAL_API_BASE_URL=sb.url + "/v1", FAL_REST_BASE_URL=sb.url,
                              FAL_CDN_BASE_URL=sb.url, FAL_DEADLINE_S=20, **extra))
    if small_parts:  # multipart with 64 KiB parts: the protocol without 100 MiB files
        fal._uploader = Uploader(fal, multipart_threshold=256 * KIB, part_size=64 * KIB)
    return fal


def stored(url: str) -> httpx.Response:
    return httpx.get(url, timeout=20)


async def test_small_file_round_trip(sb, tmp_path):
    path = tmp_path / "fox.png"
    path.write_bytes(b"\x89PNG" + bytes(range(256)) * 20)
    async with client(sb) as fal:
        up = await fal.upload(path, lifecycle="1h")
    assert up.url.startswith(sb.url) and not up.multipart
    got = stored(up.url)
    assert got.status_code == 200 and got.content == path.read_bytes()
    assert got.headers["content-type"].startswith("image/png")


async def test_multipart_round_trip_with_a_part_failing_once(sb, tmp_path):
    data = bytes((i * 31) % 251 for i in range(64 * KIB * 7 + 99))
    path = tmp_path / "clip.bin"
    path.write_bytes(data)
    r = httpx.post(sb.url + "/_sandbox/faults", json={"kind": "server_error", "status": 503,
                                                      "ops": ["upload_part"], "times": 2})
    assert r.status_code in (200, 201), r.text
    async with client(sb, FAL_UPLOAD_CONCURRENCY=3) as fal:
        up = await fal.upload(path)
    assert (up.multipart, up.parts) == (True, 8)
    assert stored(up.url).content == data
    assert httpx.get(sb.url + "/_sandbox/faults").json()["faults"] == []  # both 503s were hit
    entry = next(u for u in httpx.get(sb.url + "/_sandbox/uploads").json()["uploads"]
                 if u["access_url"] == up.url)
    assert entry["via"] == "multipart" and entry["part_numbers"] == list(range(1, 9))


async def test_lifecycle_expires_on_the_sandbox_clock(sb):
    async with client(sb) as fal:
        up = await fal.upload(b"short-lived", file_name="note.txt", lifecycle="immediate")
    assert up.expires_in_s == 60 and stored(up.url).status_code == 200
    sb.advance(61)
    assert stored(up.url).status_code == 404


async def test_token_expired_on_the_server_is_replaced(sb):
    async with client(sb) as fal:
        await fal.upload(b"one", file_name="a.txt")
        sb.advance(601)  # the sandbox now refuses the cached token; the wall clock says fine
        up = await fal.upload(b"two", file_name="b.txt")
        assert fal.uploader.token_calls == 2
    assert stored(up.url).content == b"two"


async def test_upload_tool_on_the_sandbox(sb, tmp_path):
    path = tmp_path / "voice.wav"
    path.write_bytes(b"RIFF" + b"\0" * 2000)
    tool = build_fal_tool("upload_file", client=client(sb))
    msg = await tool.ainvoke({"name": "upload_file", "args": {"path": str(path)}, "id": "c1",
                              "type": "tool_call"})
    assert msg.artifact["content_type"] in ("audio/x-wav", "audio/wav")
    assert stored(msg.artifact["url"]).content == path.read_bytes()
    with pytest.raises(UploadFileError):
        async with client(sb) as fal:
            await fal.upload(tmp_path / "none.wav")


async def test_schema_check_from_the_sandbox_openapi(sb):
    async with client(sb) as fal:
        schema = await fal.check_arguments("fal-ai/flux/dev", {"prompt": "a fox"})
        assert isinstance(schema, InputSchema)
        assert "prompt" in schema.required and "image_size" in schema.defaults
        with pytest.raises(ArgumentsInvalid) as info:
            await fal.check_arguments("fal-ai/flux/dev", {"promt": "a fox", "num_images": "2",
                                                          "image_size": "huge"})
        text = info.value.message
        assert "unknown field 'promt' (did you mean 'prompt'?)" in text
        assert "missing required field 'prompt' (string)" in text
        assert "field 'num_images' (integer" in text and "square_hd" in text
        i2i = await fal.input_schema("fal-ai/flux/dev/image-to-image")
        if isinstance(i2i, InputSchema):
            assert "image_url" in i2i.media_fields
        gone = await fal.input_schema("fal-ai/no-such-model")
        assert isinstance(gone, SchemaUnavailable)


async def test_real_thresholds_multipart_above_100_mib(sb, tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        for i in range(101):
            fh.write(bytes([i]) * (1024 * 1024))
    async with client(sb, small_parts=False, FAL_UPLOAD_CONCURRENCY=4) as fal:
        up = await fal.upload(path)
    assert (up.multipart, up.parts, up.size) == (True, 11, 101 * 1024 * 1024)
    head = httpx.head(up.url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == up.size
    path.unlink()


async def test_in_process_asgi_sandbox_upload_and_schema():
    from sandbox.app import create_app

    app = create_app(SandboxConfig(manual_clock=True))
    base = "http://sandbox.test"
    fal = FalClient(FalConfig(_env_file=None, FAL_KEY=KEY, FAL_QUEUE_BASE_URL=base,
                              FAL_API_BASE_URL=base + "/v1", FAL_REST_BASE_URL=base,
                              FAL_CDN_BASE_URL=base, FAL_DEADLINE_S=20),
                    transport=httpx.ASGITransport(app=app))
    fal._uploader = Uploader(fal, multipart_threshold=256 * KIB, part_size=64 * KIB)
    data = bytes(range(256)) * 1500  # 375 KiB: 6 parts
    try:
        async with fal:
            up = await fal.upload(data, file_name="a.bin")
            small = await fal.upload(b"tiny", file_name="t.txt")
            schema = await fal.input_schema("fal-ai/flux/dev")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
                assert (await http.get(up.url)).content == data
                assert (await http.get(small.url)).content == b"tiny"
        assert (up.parts, small.parts) == (6, 1) and isinstance(schema, InputSchema)
    finally:
        await app.state.sandbox.aclose()
