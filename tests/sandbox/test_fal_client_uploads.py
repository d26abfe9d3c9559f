"""The official fal_client's uploads, unchanged, against `sandbox --tls`.

fal_client has no environment override for `REST_URL`/`CDN_URL`, so the script sets both
module constants to the sandbox (one host serves the REST and CDN routes)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread

PRELUDE = r"""
import json, os, sys
import fal_client
import fal_client.client as C
C.REST_URL = C.CDN_URL = os.environ["SANDBOX_URL"]
"""

SMALL = PRELUDE + r"""
from PIL import Image
path = os.path.join(os.environ["WORK"], "red.png")
Image.new("RGB", (64, 48), (200, 30, 40)).save(path)
out = {"file": fal_client.upload_file(path),
       "image": fal_client.upload_image(Image.new("RGB", (32, 32), (0, 0, 255)), format="png"),
       "bytes": fal_client.upload(b"hello sandbox", "text/plain", file_name="hello.txt"),
       "lifecycle": fal_client.upload(b"brief", "text/plain", file_name="brief.txt",
                                      lifecycle=C.StorageSettings(expires_in="1h"))}
print(json.dumps(out))
"""

BIG = PRELUDE + r"""
import time
path = sys.argv[1]
t0 = time.monotonic()
url = fal_client.upload_file(path)
print(json.dumps({"url": url, "seconds": time.monotonic() - t0}))
"""

FAILING_PART = PRELUDE + r"""
try:
    fal_client.upload_file(sys.argv[1])
    print(json.dumps({"raised": None}))
except C.FalClientHTTPError as exc:
    print(json.dumps({"raised": exc.status_code}))
"""


@pytest.fixture
def tls_sandbox(tmp_path):
    with start_in_thread(config=SandboxConfig(speed=40.0, data_dir=tmp_path / "data"), tls=True) as sb:
        yield sb


def _run(sb, script: str, *args: str, work=None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(sb.fal_client_env(), FAL_KEY="up-id:up-secret", SANDBOX_URL=sb.url, WORK=str(work or "."))
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _get(sb, url: str) -> httpx.Response:
    with httpx.Client(verify=str(sb.cert_path), timeout=30) as c:
        return c.get(url)


def test_upload_file_image_and_bytes(tls_sandbox, tmp_path):
    sb = tls_sandbox
    out = _run(sb, SMALL, work=tmp_path)
    for key in ("file", "image", "bytes", "lifecycle"):
        assert out[key].startswith(sb.url + "/files/sandbox/"), out
    png = _get(sb, out["file"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == (tmp_path / "red.png").read_bytes()
    assert _get(sb, out["image"]).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert _get(sb, out["bytes"]).content == b"hello sandbox"
    uploads = {u["access_url"]: u for u in sb.state.uploads.snapshot()["uploads"]}
    assert all(u["via"] == "cdn" for u in uploads.values())
    assert uploads[out["lifecycle"]]["lifecycle"]["expiration_duration_seconds"] == 3600
    assert uploads[out["file"]]["file_name"] == "red.png"
    assert sb.state.uploads.tokens_issued == 1  # fal_client caches the token


def test_multipart_upload_over_100_mib_counts_its_parts(tls_sandbox, tmp_path):
    sb = tls_sandbox
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(101):  # 101 MiB: over fal_client's 100 MiB threshold, so multipart
            block = bytes([i]) * (1024 * 1024)
            fh.write(block)
            digest.update(block)
    out = _run(sb, BIG, str(path))
    (entry,) = [u for u in sb.state.uploads.snapshot()["uploads"] if u["access_url"] == out["url"]]
    assert entry["via"] == "multipart" and entry["complete"] is True
    assert entry["parts_received"] == 11 and entry["part_numbers"] == list(range(1, 12))  # 10 MiB parts
    assert entry["size"] == path.stat().st_size
    stored = sb.state.uploads.files[entry["file_id"]].path
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest.hexdigest()
    path.unlink()


def test_a_failing_part_fails_fal_clients_multipart_upload(tls_sandbox, tmp_path):
    sb = tls_sandbox
    sb.state.faults.add("server_error", ops=["upload_part"], times=1)
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        fh.truncate(100 * 1024 * 1024 + 1)
    out = _run(sb, FAILING_PART, str(path))
    assert out["raised"] == 503  # fal_client does not retry a part
    (entry,) = sb.state.uploads.snapshot()["uploads"]
    assert entry["complete"] is False and entry["parts_received"] == 10  # 11 parts, one refused


def test_cdn_failure_falls_back_to_storage_upload(tls_sandbox, tmp_path):
    sb = tls_sandbox
    sb.state.faults.add("server_error", ops=["upload"], times=1)  # the CDN POST fails once
    out = _run(sb, PRELUDE + r"""
print(json.dumps({"url": fal_client.upload(b"via storage", "text/plain", file_name="s.txt")}))
""")
    (entry,) = sb.state.uploads.snapshot()["uploads"]
    assert entry["via"] == "storage" and entry["access_url"] == out["url"]
    assert _get(sb, out["url"]).content == b"via storage"


def test_uploaded_image_feeds_image_to_image_through_fal_client(tls_sandbox, tmp_path):
    sb = tls_sandbox
    out = _run(sb, PRELUDE + r"""
from PIL import Image
src = Image.new("RGB", (96, 64))
src.putdata([(x * 2, y * 3, 90) for y in range(64) for x in range(96)])
url = fal_client.upload_image(src, format="png")
result = fal_client.subscribe("fal-ai/flux/dev/image-to-image",
                              arguments={"image_url": url, "prompt": "dusk", "strength": 0.2, "seed": 1})
print(json.dumps({"url": url, "result": result}))
""")
    (image,) = out["result"]["images"]
    assert (image["width"], image["height"]) == (96, 64)
    got = Image.open(io.BytesIO(_get(sb, image["url"]).content)).convert("RGB")
    src = Image.open(io.BytesIO(_get(sb, out["url"]).content)).convert("RGB")
    top = (0, 0, 96, 48)
    diff = sum(ImageStat.Stat(ImageChops.difference(got.crop(top), src.crop(top))).mean) / 3
    assert 0 < diff < 15  # derived from the uploaded picture, not drawn from scratch
