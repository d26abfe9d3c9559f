"""Generated media: valid files, served by the sandbox, different per prompt and seed."""

from __future__ import annotations

import io
import struct
import wave
import zlib

import pytest
from PIL import Image

from tests.sandbox.conftest import submit


async def _result(client, state, endpoint, body):
    sub = await submit(client, endpoint, body)
    await state.advance(2000)  # longer than any run, shorter than retention
    r = await client.get(sub["response_url"])
    assert r.status_code == 200, r.text
    return r.json()


async def _fetch(client, url):
    r = await client.get(url)
    assert r.status_code == 200
    return r


def _check_png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, tag = struct.unpack(">I4s", data[8:16])
    assert tag == b"IHDR" and zlib.crc32(data[12:16 + length]) == struct.unpack(">I", data[16 + length:20 + length])[0]
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


async def test_png_valid_and_varies_by_prompt_and_seed(client, state):
    blobs = {}
    for prompt, seed in [("a fox", 1), ("a fox", 2), ("a cat", 1), ("a fox", 1)]:
        out = await _result(client, state, "fal-ai/flux/dev", {"prompt": prompt, "seed": seed})
        image = out["images"][0]
        r = await _fetch(client, image["url"])
        assert r.headers["content-type"] == "image/png"
        assert _check_png(r.content) == (image["width"], image["height"])
        assert image["file_size"] == len(r.content)
        assert out["seed"] == seed
        blobs.setdefault((prompt, seed), set()).add(r.content)
    assert len(blobs[("a fox", 1)]) == 1  # same prompt+seed -> same bytes
    distinct = {next(iter(v)) for v in blobs.values()}
    assert len(distinct) == 3


async def test_num_images_and_image_size(client, state):
    out = await _result(client, state, "fal-ai/flux/dev", {"prompt": "p", "num_images": 2, "image_size": "portrait_16_9"})
    assert len(out["images"]) == 2 and out["images"][0]["url"] != out["images"][1]["url"]
    assert out["images"][0]["height"] > out["images"][0]["width"]


async def test_tts_returns_wav(client, state):
    out = await _result(client, state, "fal-ai/kokoro/american-english", {"text": "Hello from the sandbox"})
    r = await _fetch(client, out["audio"]["url"])
    assert r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getnframes() > 0
        assert w.getnframes() / w.getframerate() == pytest.approx(out["audio"]["duration"], abs=0.01)
    other = await _result(client, state, "fal-ai/kokoro/american-english", {"text": "Something else"})
    assert (await _fetch(client, other["audio"]["url"])).content != r.content


async def test_video_is_animated_gif(client, state):
    out = await _result(client, state, "fal-ai/ltx-video", {"prompt": "waves"})
    r = await _fetch(client, out["video"]["url"])
    assert out["video"]["content_type"] == "image/gif" == r.headers["content-type"]
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "GIF" and getattr(im, "n_frames", 1) > 1


def _data_uri(mime: str, data: bytes) -> str:
    import base64

    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.png", _png_bytes())
    return buf.getvalue()


async def test_mesh_is_glb_and_lora_is_safetensors(client, state):
    mesh = await _result(client, state, "fal-ai/triposr", {"image_url": _data_uri("image/png", _png_bytes())})
    data = (await _fetch(client, mesh["model_mesh"]["url"])).content
    assert data[:4] == b"glTF" and struct.unpack("<I", data[8:12])[0] == len(data)
    lora = await _result(client, state, "fal-ai/flux-lora-fast-training", {"images_data_url": _data_uri("application/zip", _zip_bytes())})
    data = (await _fetch(client, lora["diffusers_lora_file"]["url"])).content
    (n,) = struct.unpack("<Q", data[:8])
    import json

    header = json.loads(data[8:8 + n])
    assert header["lora_A.weight"]["shape"] == [4, 4] and len(data) == 8 + n + 64


async def test_speech_to_text_of_a_foreign_wav_gives_a_stand_in_text(client, state):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 8000 * 3)
    out = await _result(client, state, "fal-ai/whisper", {"audio_url": _data_uri("audio/wav", buf.getvalue())})
    assert out["text"] and len(out["chunks"]) == 3
    assert out["chunks"][-1]["timestamp"][1] == pytest.approx(3.0)
