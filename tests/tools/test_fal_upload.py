"""FalClient.upload against an in-process fal storage fake: token, single, multipart, errors."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from cdn_fakes import CDN, REST, FakeCdn
from fal_fakes import KEY

from tools.fal import (
    AuthError,
    FalClient,
    FalConfig,
    FileMissingError,
    FileTooLargeError,
    FileUnreadableError,
    InputError,
    InvalidResponseError,
    NotAFileError,
    ServerError,
    UploadFileError,
)
from tools.fal import files as F
from tools.fal.upload import Uploader

KIB = 1024


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(cdn: FakeCdn, *, small: bool = True, **extra: Any) -> FalClient:
    config = FalConfig(FAL_KEY=KEY, FAL_DEADLINE_S=5, **cdn.config(**extra))
    fal = FalClient(config, transport=cdn.router())
    if small:  # 64 KiB threshold, 16 KiB parts: the multipart logic without 100 MiB files
        fal._uploader = Uploader(fal, clock=cdn.clock, multipart_threshold=64 * KIB,
                                 part_size=16 * KIB)
    else:
        fal._uploader = Uploader(fal, clock=cdn.clock)
    return fal


def blob(size: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cdn(clock: Clock) -> FakeCdn:
    return FakeCdn(clock=clock)


# -- single uploads ---------------------------------------------------------------------------

async def test_single_upload_sends_bytes_headers_and_token_not_key(cdn, tmp_path):
    path = tmp_path / "fox photo.png"
    path.write_bytes(blob(5000))
    async with make(cdn) as fal:
        up = await fal.upload(path, lifecycle="1d")
    assert up.url.startswith(CDN + "/files/") and up.size == 5000 and up.parts == 1
    assert (up.content_type, up.file_name, up.multipart, up.expires_in_s) == (
        "image/png", "fox photo.png", False, 86400)
    token_call, upload_call = cdn.seen
    assert str(token_call.url) == REST + "/storage/auth/token?storage_type=fal-cdn-v3"
    assert token_call.headers["authorization"] == f"Key {KEY}" and token_call.content == b"{}"
    assert upload_call.url.path == "/files/upload"
    assert upload_call.headers["authorization"] == f"Bearer {cdn.tokens[0]}"
    assert KEY not in str(upload_call.headers)
    assert upload_call.headers["content-type"] == "image/png"
    assert upload_call.headers["x-fal-file-name"] == "fox photo.png"
    life = '{"expiration_duration_seconds":86400}'
    assert upload_call.headers["x-fal-object-lifecycle"] == life
    assert upload_call.headers["x-fal-object-lifecycle-preference"] == life
    assert cdn.files[up.url][0] == path.read_bytes()


async def test_bytes_source_content_type_override_and_no_lifecycle_headers(cdn):
    async with make(cdn) as fal:
        up = await fal.upload(b"hello", file_name="note.bin", content_type="text/plain")
    assert (up.file_name, up.content_type, up.expires_in_s) == ("note.bin", "text/plain", None)
    sent = cdn.seen[-1]
    assert sent.headers["content-type"] == "text/plain" and sent.content == b"hello"
    assert "x-fal-object-lifecycle" not in sent.headers
    assert "x-fal-object-lifecycle-preference" not in sent.headers


async def test_token_is_cached_until_shortly_before_expiry(cdn, clock, tmp_path):
    async with make(cdn) as fal:
        for _ in range(3):
            await fal.upload(b"x", file_name="a.txt")
        assert fal.uploader.token_calls == 1
        clock.now += 3600 - 31  # 31 s left: still used
        await fal.upload(b"x", file_name="a.txt")
        assert fal.uploader.token_calls == 1
        clock.now += 2  # 29 s left: inside the 30 s margin, so a new one
        await fal.upload(b"x", file_name="a.txt")
        assert fal.uploader.token_calls == 2 and len(cdn.tokens) == 2


async def test_one_token_call_in_flight_for_concurrent_uploads(cdn):
    async with make(cdn) as fal:
        ups = await asyncio.gather(*(fal.upload(b"x%d" % i, file_name=f"{i}.txt")
                                     for i in range(8)))
    assert len({u.url for u in ups}) == 8
    assert fal.uploader.token_calls == 1
    assert sum(r.url.host == "rest.test" for r in cdn.seen) == 1


async def test_refused_token_is_replaced_once(cdn):
    async with make(cdn) as fal:
        await fal.upload(b"x", file_name="a.txt")
        cdn.tokens.append("rotated-elsewhere")  # the cached token is no longer accepted
        up = await fal.upload(b"y", file_name="b.txt")
    assert cdn.files[up.url][0] == b"y" and fal.uploader.token_calls == 2


# -- multipart ------------------------------------------------------------------------------

async def test_multipart_reassembles_and_bounds_parts_in_flight(clock, tmp_path):
    cdn = FakeCdn(clock=clock, barrier=3)
    data = blob(16 * KIB * 9 + 123)  # 10 parts, the last one short
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    async with make(cdn, FAL_UPLOAD_CONCURRENCY=3) as fal:
        up = await fal.upload(path)
    assert (up.multipart, up.parts, up.size, up.content_type) == (True, 10, len(data),
                                                                    "video/mp4")
    assert cdn.files[up.url][0] == data
    assert cdn.max_inflight == 3
    start = next(r for r in cdn.seen if r.url.path == "/files/upload/multipart")
    assert start.headers["x-fal-file-name"] == "clip.mp4"
    puts = [r for r in cdn.seen if r.method == "PUT"]
    assert all(r.headers["authorization"].startswith("Bearer ") for r in puts)
    assert all(KEY not in str(r.headers) for r in puts)


async def test_multipart_reads_the_file_part_by_part(cdn, tmp_path, monkeypatch):
    data = blob(16 * KIB * 5)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    reads: list[tuple[int, int]] = []
    real = F.read_part

    def spy(p: Path, offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return real(p, offset, length)

    monkeypatch.setattr(F, "read_part", spy)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("whole-file read"))
    async with make(cdn) as fal:
        up = await fal.upload(path)
    assert up.parts == 5 and sorted(reads) == [(i * 16 * KIB, 16 * KIB) for i in range(5)]


@pytest.mark.parametrize("failure", [503, 500, 429, "drop"])
async def test_a_failed_part_is_resent_alone(clock, tmp_path, failure):
    cdn = FakeCdn(clock=clock, fail={3: [failure, failure]})
    data = blob(16 * KIB * 6)
    async with make(cdn) as fal:
        up = await fal.upload(data, file_name="x.bin")
    assert cdn.files[up.url][0] == data
    assert cdn.part_attempts == {1: 1, 2: 1, 3: 3, 4: 1, 5: 1, 6: 1}
    assert sum(r.url.path.endswith("/files/upload/multipart") for r in cdn.seen) == 1


async def test_a_part_that_keeps_failing_names_itself_and_nothing_completes(clock):
    cdn = FakeCdn(clock=clock, fail={2: [503] * 20})
    async with make(cdn, FAL_MAX_RETRIES=2) as fal:
        with pytest.raises(ServerError) as info:
            await fal.upload(blob(16 * KIB * 6), file_name="x.bin")
    assert "part 2/6 of x.bin" in info.value.message and info.value.status == 503
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)
    assert cdn.part_attempts[2] == 3
    assert not any(r.url.path.endswith("/complete") for r in cdn.seen)


async def test_a_refused_part_is_not_retried(clock):
    cdn = FakeCdn(clock=clock, fail={4: [400]})
    async with make(cdn) as fal:
        with pytest.raises(Exception) as info:
            await fal.upload(blob(16 * KIB * 6), file_name="x.bin")
    assert "part 4/6" in str(info.value) and cdn.part_attempts[4] == 1


async def test_fal_thresholds_100_mib_single_above_it_multipart(cdn):
    size = 100 * F.MIB
    async with make(cdn, small=False, FAL_UPLOAD_CONCURRENCY=10) as fal:
        one = await fal.upload(b"\0" * size, file_name="a.bin")
        many = await fal.upload(b"\1" * (size + 1), file_name="b.bin")
    assert (one.multipart, one.parts) == (False, 1)
    assert (many.multipart, many.parts) == (True, 11)
    lengths = sorted(len(r.content) for r in cdn.seen if r.method == "PUT")
    assert lengths == [1] + [10 * F.MIB] * 10


# -- errors ---------------------------------------------------------------------------------

async def test_local_file_errors_are_typed_and_nothing_is_sent(cdn, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    async with make(cdn, FAL_UPLOAD_MAX_BYTES=1024) as fal:
        with pytest.raises(FileMissingError, match="no file at"):
            await fal.upload(tmp_path / "nope.png")
        with pytest.raises(FileMissingError):
            await fal.upload(str(big) + "/inside")
        with pytest.raises(NotAFileError, match="directory"):
            await fal.upload(tmp_path)
        with pytest.raises(FileTooLargeError) as info:
            await fal.upload(big)
        assert (info.value.size, info.value.limit_bytes) == (2048, 1024)
        assert "FAL_UPLOAD_MAX_BYTES" in info.value.message
        with pytest.raises(FileTooLargeError):
            await fal.upload(b"x" * 1025, file_name="b.bin")
        with pytest.raises(UploadFileError, match="empty"):
            await fal.upload(empty)
        with pytest.raises(UploadFileError, match="path is empty"):
            await fal.upload("  ")
        with pytest.raises(UploadFileError, match="is a URL, not a local file"):
            await fal.upload("https://example.com/fox.png")
        with pytest.raises(InputError, match="lifecycle"):
            await fal.upload(big, lifecycle="2h")
    assert cdn.seen == []


async def test_unreadable_file(cdn, tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    path.write_bytes(b"x")

    def denied(*a: Any, **k: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(F, "open", denied, raising=False)
    async with make(cdn) as fal:
        with pytest.raises(FileUnreadableError, match="permission denied"):
            await fal.upload(path)
    assert cdn.seen == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_for_real(tmp_path):
    path = tmp_path / "locked.bin"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(FileUnreadableError):
        F.check_file(path, 1024)


class Switch:
    """The fake CDN, unless `override` answers first (returning None passes through)."""

    def __init__(self, cdn: FakeCdn) -> None:
        self.cdn = cdn
        self.override: Any = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        response = await self.cdn.handle(request)
        return response


def switched(cdn: FakeCdn, **extra: Any) -> tuple[FalClient, Switch]:
    switch = Switch(cdn)
    config = FalConfig(FAL_KEY=KEY, FAL_DEADLINE_S=5, **cdn.config(**extra))
    fal = FalClient(config, transport=httpx.MockTransport(switch))
    fal._uploader = Uploader(fal, clock=cdn.clock, multipart_threshold=64 * KIB,
                             part_size=16 * KIB)
    return fal, switch


async def test_errors_name_the_step_and_hide_key_and_token(cdn):
    fal, switch = switched(cdn, FAL_MAX_RETRIES=0)
    async with fal:
        cdn.fail_token = [401]
        with pytest.raises(AuthError) as info:
            await fal.upload(b"x", file_name="a.txt")
        assert "upload token" in info.value.message and KEY not in str(info.value)
        await fal.upload(b"x", file_name="a.txt")  # a token is now cached
        switch.override = lambda r: httpx.Response(
            500, json={"detail": f"bad header {r.headers['authorization']}"},
            headers={"x-fal-request-id": r.headers["authorization"]})
        with pytest.raises(ServerError) as info:
            await fal.upload(b"y", file_name="b.txt")
    text = str(info.value) + repr(info.value) + json.dumps(info.value.to_dict())
    assert "uploading b.txt" in text and "[REDACTED]" in text
    assert cdn.tokens[0] not in text and KEY not in text


@pytest.mark.parametrize("body", [{"token_type": "Bearer", "base_url": CDN},
                                  {"token": "t", "token_type": "Bearer", "base_url": "ftp://x"},
                                  {"token": "t", "token_type": "Bearer", "base_url": CDN,
                                   "expires_at": "soon"}])
async def test_bad_token_answers_are_invalid_responses(body):
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    async with FalClient(FalConfig(FAL_KEY=KEY, **FakeCdn().config()),
                         transport=transport) as fal:
        with pytest.raises(InvalidResponseError, match="upload token"):
            await fal.upload(b"x", file_name="a.txt")


async def test_missing_access_url_or_etag(cdn):
    fal, switch = switched(cdn)
    async with fal:
        switch.override = lambda r: (httpx.Response(200, json={"ok": True})
                                     if r.url.path == "/files/upload" else None)
        with pytest.raises(InvalidResponseError, match="access_url"):
            await fal.upload(b"x", file_name="a.txt")
        switch.override = lambda r: httpx.Response(200) if r.method == "PUT" else None
        with pytest.raises(InvalidResponseError, match="part .* ETag"):
            await fal.upload(blob(16 * KIB * 5), file_name="b.bin")


def test_base_urls_and_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FAL_REST_BASE_URL", "http://127.0.0.1:9/rest")
    monkeypatch.setenv("FAL_CDN_BASE_URL", "http://127.0.0.1:9/cdn")
    monkeypatch.setenv("FAL_UPLOAD_MAX_BYTES", "2048")
    monkeypatch.setenv("FAL_UPLOAD_CONCURRENCY", "2")
    c = FalConfig()
    assert (c.rest_base_url, c.cdn_base_url) == ("http://127.0.0.1:9/rest",
                                                 "http://127.0.0.1:9/cdn")
    assert (c.upload_max_bytes, c.upload_concurrency) == (2048, 2)
    monkeypatch.setenv("FAL_UPLOAD_CONCURRENCY", "50")
    with pytest.raises(ValueError):
        FalConfig()
    for name in ("FAL_REST_BASE_URL", "FAL_CDN_BASE_URL", "FAL_UPLOAD_MAX_BYTES",
                 "FAL_UPLOAD_CONCURRENCY"):
        monkeypatch.delenv(name)
    d = FalConfig(_env_file=None)
    assert (d.rest_base_url, d.cdn_base_url, d.upload_max_bytes) == (
        "https://rest.fal.ai", "https://v3.fal.media", 1024 ** 3)


# -- pure rules -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds, header", [
    ("never", None, "{}"), ("immediate", 60, '{"expiration_duration_seconds":60}'),
    ("1h", 3600, None), ("1d", 86400, None), ("7d", 604800, None), ("30d", 2592000, None),
    ("1y", 31536000, None), (90, 90, '{"expiration_duration_seconds":90}'), ("120", 120, None),
    (None, None, None),
])
def test_lifecycle_presets_and_seconds(value, seconds, header):
    assert F.lifecycle_seconds(value) == seconds
    if header is not None or value is None:
        assert F.lifecycle_header(value) == header


@pytest.mark.parametrize("bad", [0, -5, True, "2h", "", 1.5])
def test_bad_lifecycles(bad):
    with pytest.raises(InputError, match="lifecycle"):
        F.lifecycle_header(bad)


def test_content_types_and_header_names():
    assert F.content_type_for("a.PNG") == "image/png"
    assert F.content_type_for("clip.mp4") == "video/mp4"
    assert F.content_type_for("data.weird-ext") == "application/octet-stream"
    assert F.content_type_for("x.png", "image/webp") == "image/webp"
    assert F.content_type_for("x", "text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    for bad in ("png", "image/png\r\nX-Evil: 1", "", "a b/c"):
        with pytest.raises(InputError):
            F.content_type_for("x.png", bad)
    assert F.header_file_name("photo é 1.png") == "photo %C3%A9 1.png"
    assert F.header_file_name("dir/sub\\evil\r\n.png") == "evil%0D%0A.png"
    assert F.header_file_name("") == "upload.bin"


def test_part_plan():
    assert F.part_count(1) == 1 and F.part_count(F.PART_SIZE) == 1
    assert F.part_count(F.PART_SIZE + 1) == 2
    assert F.part_span(2, F.PART_SIZE + 5) == (F.PART_SIZE, 5)


def test_token_margin_and_expiry_formats():
    from tools.fal.upload import parse_token

    now = 1000.0
    t = parse_token(b'{"token":"t","token_type":"Bearer","base_url":"http://x/",'
                    b'"expires_at":"1970-01-01T00:26:40Z"}', now)  # 1600: 600 s of life
    assert t.base_url == "http://x" and t.expires_at == 1600.0 and t.header == "Bearer t"
    assert t.usable(1569.9) and not t.usable(1570.0)
    short = parse_token(b'{"token":"t","token_type":"Bearer","base_url":"http://x",'
                        b'"expires_at":1040}', now)
    assert short.usable(1029.9) and not short.usable(1030.0)  # a quarter of a 40 s life
