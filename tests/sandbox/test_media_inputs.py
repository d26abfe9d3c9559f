"""Media inputs: uploaded, data: and loopback images and audio go in; outputs derived from them come out."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.sandbox.conftest import submit

I2I = "fal-ai/flux/dev/image-to-image"


def _gradient(w: int = 120, h: int = 90, *, smooth: bool = False) -> Image.Image:
    """A picture with structure everywhere (a noisy blue channel unless `smooth`, for GIF's palette)."""
    im = Image.new("RGB", (w, h))
    im.putdata([(x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h) if smooth else (x * y) % 256)
                for y in range(h) for x in range(w)])
    return im


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _mean_diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def _correlation(a: Image.Image, b: Image.Image) -> float:
    xs, ys = list(a.convert("L").getdata()), list(b.convert("L").getdata())
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    vx, vy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return cov / (vx * vy) ** 0.5


async def _upload(client, data: bytes, kind: str = "image/png", name: str = "in.png") -> str:
    tok = (await client.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})).json()
    r = await client.post("/files/upload", content=data, headers={
        "Authorization": f"Bearer {tok['token']}", "Content-Type": kind, "X-Fal-File-Name": name})
    assert r.status_code == 200, r.text
    return r.json()["access_url"]


async def _result(client, state, endpoint, body, status=200):
    sub = await submit(client, endpoint, body)
    await state.advance(2000)
    r = await client.get(sub["response_url"])
    assert r.status_code == status, r.text
    return r.json()


async def _image(client, url: str) -> Image.Image:
    r = await client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = Image.open(io.BytesIO(r.content))
    im.load()
    return im


async def test_text_to_image_draws_the_prompt(client, state):
    plain = await _result(client, state, "fal-ai/flux/dev", {"prompt": "x", "seed": 1})
    worded = await _result(client, state, "fal-ai/flux/dev", {"prompt": "lighthouse storm waves", "seed": 1})
    a, b = await _image(client, plain["images"][0]["url"]), await _image(client, worded["images"][0]["url"])
    white = lambda im: sum(1 for px in im.getdata() if px == (255, 255, 255))  # noqa: E731 - a one-line predicate
    assert white(b) > white(a) + 200  # the longer prompt's white text boxes
    ink = [px for px in b.getdata() if px == (0, 0, 0)]
    assert len(ink) > 50  # black letters


async def test_image_to_image_is_derived_from_the_uploaded_image(client, state):
    src = _gradient()
    url = await _upload(client, _png(src))
    low = await _result(client, state, I2I, {"image_url": url, "prompt": "make it sunny", "strength": 0.1, "seed": 3})
    high = await _result(client, state, I2I, {"image_url": url, "prompt": "make it sunny", "strength": 0.95, "seed": 3})
    (img_low,), (img_high,) = low["images"], high["images"]
    assert (img_low["width"], img_low["height"]) == src.size == (img_high["width"], img_high["height"])
    out_low, out_high = await _image(client, img_low["url"]), await _image(client, img_high["url"])
    assert out_low.size == src.size
    top = (0, 0, src.width, int(src.height * 0.75))  # above the prompt band
    d_low, d_high = _mean_diff(out_low.crop(top), src.crop(top)), _mean_diff(out_high.crop(top), src.crop(top))
    assert d_low < 12 and d_high > 2 * d_low  # strength moves it away from the input...
    assert _correlation(out_high.crop(top), src.crop(top)) > 0.9  # ...keeping the input's structure
    band = out_high.crop((0, int(src.height * 0.8), src.width, src.height))
    assert any(px == (255, 255, 255) for px in band.getdata())  # the prompt is drawn in the band
    assert low["prompt"] == "make it sunny" and low["seed"] == 3


async def test_image_to_image_from_a_data_uri_and_num_images(client, state):
    src = _gradient(64, 64)
    out = await _result(client, state, I2I, {"image_url": _data_uri("image/png", _png(src)), "prompt": "p",
                                             "num_images": 2, "strength": 0.5})
    a, b = [await _image(client, i["url"]) for i in out["images"]]
    assert a.size == b.size == (64, 64) and a.tobytes() != b.tobytes()  # one seed each


async def test_upscaler_resizes_the_input(client, state):
    src = _gradient(80, 60)
    url = await _upload(client, _png(src))
    out = await _result(client, state, "fal-ai/clarity-upscaler", {"image_url": url, "scale": 2})
    (img,) = out["images"]
    assert (img["width"], img["height"]) == (160, 120)
    big = await _image(client, img["url"])
    assert big.size == (160, 120)
    assert _mean_diff(big.resize(src.size, Image.Resampling.LANCZOS), src) < 6


async def test_image_to_video_is_an_animation_of_the_input(client, state):
    src = _gradient(128, 96, smooth=True)
    url = await _upload(client, _png(src))
    out = await _result(client, state, "fal-ai/kling-video/v2.1/master/image-to-video",
                        {"prompt": "slow zoom", "image_url": url, "duration": "5"})
    video = out["video"]
    r = await client.get(video["url"])
    assert video["content_type"] == "image/gif" == r.headers["content-type"]
    assert video["file_size"] == len(r.content)
    with Image.open(io.BytesIO(r.content)) as gif:
        assert gif.n_frames == 20 and gif.size == src.size
        assert gif.info["duration"] * gif.n_frames == 5000  # 5 s at 4 frames a second
        first = gif.convert("RGB")
        gif.seek(gif.n_frames - 1)
        last = gif.convert("RGB")
    assert _mean_diff(first, src) < 6  # frame 1 is the input (GIF palette aside)
    assert _correlation(first, src) > 0.98
    assert _mean_diff(last, src) > _mean_diff(first, src)  # later frames zoom in


def _wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


async def test_tts_wav_duration_follows_words_and_speed(client, state):
    short = await _result(client, state, "fal-ai/kokoro/american-english", {"text": "Hello there"})
    long = await _result(client, state, "fal-ai/kokoro/american-english",
                         {"text": "Hello there, this sentence has quite a few more words in it"})
    fast = await _result(client, state, "fal-ai/kokoro/american-english",
                         {"text": "Hello there, this sentence has quite a few more words in it", "speed": 2.0})
    durations = []
    for out in (short, long, fast):
        audio = out["audio"]
        r = await client.get(audio["url"])
        assert r.headers["content-type"] == "audio/wav" and audio["content_type"] == "audio/wav"
        assert _wav_seconds(r.content) == pytest.approx(audio["duration"], abs=1e-3)
        assert audio["file_size"] == len(r.content)
        durations.append(audio["duration"])
    assert durations[1] > 2 * durations[0]
    assert durations[2] == pytest.approx(durations[1] / 2, rel=0.01)


async def test_speech_to_text_reads_back_the_sandboxs_speech(client, state):
    text = "The quick sandbox speaks eleven words and then reads them back"
    tts = await _result(client, state, "fal-ai/kokoro/american-english", {"text": text})
    stt = await _result(client, state, "fal-ai/whisper", {"audio_url": tts["audio"]["url"]})
    assert stt["text"] == text
    assert " ".join(c["text"] for c in stt["chunks"]) == text
    assert stt["chunks"][-1]["timestamp"][1] <= tts["audio"]["duration"]
    # The same WAV uploaded by the user transcribes the same.
    wav = (await client.get(tts["audio"]["url"])).content
    again = await _result(client, state, "fal-ai/wizper", {"audio_url": await _upload(client, wav, "audio/wav", "a.wav")})
    assert again["text"] == text


async def test_speech_to_text_refuses_audio_it_cannot_read(client, state):
    out = await _result(client, state, "fal-ai/whisper",
                        {"audio_url": _data_uri("audio/mpeg", b"ID3\x03\x00" + b"\x00" * 64)}, status=422)
    (err,) = out["detail"]
    assert err["type"] == "unsupported_audio_format" and err["loc"] == ["body", "audio_url"]
    assert "MP3" in err["msg"] and "WAV" in err["msg"]


async def test_non_loopback_hosts_are_never_fetched(client, state):
    out = await _result(client, state, I2I, {"image_url": "https://example.com/cat.png", "prompt": "p"}, status=422)
    (err,) = out["detail"]
    assert err["type"] == "file_download_error" and "internet" in err["msg"]


async def test_broken_image_and_missing_upload(client, state):
    bad = await _result(client, state, I2I, {"image_url": _data_uri("image/png", b"not a png"), "prompt": "p"},
                        status=422)
    assert bad["detail"][0]["type"] == "image_load_error"
    gone = await _result(client, state, I2I, {"image_url": "http://sandbox.test/files/sandbox/nope/x.png",
                                              "prompt": "p"}, status=422)
    assert gone["detail"][0]["type"] == "file_download_error" and "404" in gone["detail"][0]["msg"]


class _Serve:
    """A loopback HTTP server with one file, for the duration of a test."""

    def __init__(self, body: bytes) -> None:
        payload = body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/pic.png":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Serve:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


async def test_loopback_url_is_fetched(client, state):
    src = _gradient(50, 40)
    with _Serve(_png(src)) as srv:
        out = await _result(client, state, "fal-ai/esrgan", {"image_url": srv.url + "/pic.png", "scale": 1})
        missing = await _result(client, state, "fal-ai/esrgan", {"image_url": srv.url + "/other.png"}, status=422)
    im = await _image(client, out["images"][0]["url"])
    assert im.size == src.size and _mean_diff(im, src) < 6
    assert "HTTP 404" in missing["detail"][0]["msg"]


async def test_too_large_media_is_refused(client, state):
    state.config.media_max_bytes = 1000
    out = await _result(client, state, I2I, {"image_url": await _upload(client, b"x" * 2000), "prompt": "p"},
                        status=422)
    assert out["detail"][0]["type"] == "file_too_large" and out["detail"][0]["ctx"]["max_size"] == 1000


async def test_run_host_takes_media_inputs(client, state):
    src = _gradient(60, 40)
    url = await _upload(client, _png(src))
    task = asyncio.create_task(client.post(f"/_run/{I2I}", json={"image_url": url, "prompt": "p", "strength": 0.2}))
    deadline = time.monotonic() + 10
    while not state.queue.jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert state.queue.jobs, "the run never queued its job"
    state.clock.advance(100)
    r = await asyncio.wait_for(task, 10)
    assert r.status_code == 200, r.text
    out = await _image(client, r.json()["images"][0]["url"])
    assert out.size == src.size
    top = (0, 0, 60, 30)
    assert _mean_diff(out.crop(top), src.crop(top)) < 15
    bad = asyncio.create_task(client.post(f"/_run/{I2I}", json={"image_url": "https://example.com/a.png",
                                                                 "prompt": "p"}))
    while len(state.queue.jobs) < 2 and time.monotonic() < deadline + 10:
        await asyncio.sleep(0.01)
    state.clock.advance(100)
    r = await asyncio.wait_for(bad, 10)
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "file_download_error"
