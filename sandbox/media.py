"""Generated media the sandbox serves itself at `/_media/<id>.<ext>`.

Every file is real and small, and derived from a hash of what produced it (prompt, seed...),
so different inputs give different bytes and the same input gives the same bytes:
- images: PNG (RGB, at most 256 px a side for text-to-image) with the prompt's words drawn in
  (Pillow's built-in font);
- derived images (image-to-image, upscalers): computed from the input image (a seeded tint
  blended in by `strength` with the prompt drawn in a bottom band; or a Lanczos resize plus
  unsharp mask), written to disk once and served from there;
- audio: WAV (16-bit PCM mono, 16 kHz). Text-to-speech plays one tone per word and carries the
  text and word timings in a `LIST`/`INFO` chunk (`ICMT`, JSON), which speech-to-text reads
  back (`read_wav`); other audio is a short chord;
- video: an animated GIF (Pillow): text-to-video slides a square over a hash colour,
  image-to-video zooms slowly into the input image (its first frame is the image). A valid MP4
  needs an encoder the sandbox does not ship, so video objects say `content_type: image/gif`;
- 3D: a binary glTF (GLB) holding one coloured triangle;
- LoRA weights: a tiny valid safetensors file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

    from sandbox.uploads import UploadStore

CONTENT_TYPES = {"png": "image/png", "wav": "audio/wav", "gif": "image/gif",
                 "glb": "model/gltf-binary", "safetensors": "application/octet-stream"}


@dataclass(frozen=True)
class MediaSpec:
    """What to generate for one media id."""

    ext: str
    digest: bytes
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    text: str = ""
    """Text-to-image: the words drawn in; speech: the words spoken."""
    speed: float = 1.0


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _gradient_rows(digest: bytes, width: int, height: int) -> bytes:
    """Raw RGB bytes of a gradient-and-stripes picture whose colours come from `digest`."""
    r0, g0, b0, rx, gy, bxy, stripe = digest[:7]
    stripe = 4 + stripe % 12
    rows = []
    for y in range(height):
        g = (g0 + y * (1 + gy % 5)) & 0xFF
        row = bytearray()
        band = ((y // stripe) & 1) * 64
        for x in range(width):
            row += bytes(((r0 + x * (1 + rx % 5)) & 0xFF, g, (b0 + band + ((x // 8 ^ y // 8) & 1) * (32 + bxy % 64)) & 0xFF))
        rows.append(bytes(row))
    return b"".join(rows)


def make_png(digest: bytes, width: int, height: int, text: str = "") -> bytes:
    """A gradient-and-stripes PNG whose colours come from `digest`, with `text` drawn on it."""
    if text:
        from PIL import Image

        im = Image.frombytes("RGB", (width, height), _gradient_rows(digest, width, height))
        draw_words(im, text, top=0.15, bottom=0.85)
        return encode_png(im)
    raw = _gradient_rows(digest, width, height)
    stride = width * 3
    rows = b"".join(b"\x00" + raw[y * stride:(y + 1) * stride] for y in range(height))  # filter: none
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, 6)) + _png_chunk(b"IEND", b""))


def encode_png(im: PILImage.Image) -> bytes:
    """PNG bytes of a Pillow image (fast compression: these files are short-lived)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def draw_words(im: PILImage.Image, text: str, *, top: float, bottom: float) -> None:
    """Write `text` (word-wrapped, up to what fits) in black on white boxes between the `top`
    and `bottom` fractions of the image height."""
    from PIL import ImageDraw, ImageFont

    w, h = im.size
    size = max(9, min(32, h // 12, w // 12))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(im)
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= w - 8:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    y, limit, step = int(h * top), int(h * bottom), size + 4
    for line in lines:
        if y + step > limit:
            break
        width = min(w - 4, int(draw.textlength(line, font=font)))
        x = max(2, (w - width) // 2)
        draw.rectangle([x - 2, y, x + width + 2, y + step - 1], fill=(255, 255, 255))
        draw.text((x, y + 1), line, fill=(0, 0, 0), font=font)
        y += step


def tint_of(digest: bytes) -> tuple[int, int, int]:
    """A colour picked by `digest`."""
    return digest[10], digest[11], digest[12]


def derive_image(src: PILImage.Image, digest: bytes, strength: float, prompt: str) -> PILImage.Image:
    """Image-to-image: the input with a seeded tint blended in (`0.6 x strength` of it) and the
    prompt drawn in the bottom fifth; the upper four fifths keep the input's structure."""
    from PIL import Image

    base = src.convert("RGB")
    out = Image.blend(base, Image.new("RGB", base.size, tint_of(digest)), 0.6 * max(0.0, min(1.0, strength)))
    if prompt:
        draw_words(out, prompt, top=0.8, bottom=1.0)
    return out


def upscale_image(src: PILImage.Image, scale: float, max_side: int) -> PILImage.Image:
    """An upscaler: Lanczos resize by `scale` (capped so no side passes `max_side`), then a
    light unsharp mask."""
    from PIL import Image, ImageFilter

    base = src.convert("RGB")
    k = min(scale, max_side / max(base.size))
    size = (max(1, round(base.width * k)), max(1, round(base.height * k)))
    return base.resize(size, Image.Resampling.LANCZOS).filter(
        ImageFilter.UnsharpMask(radius=1, percent=60, threshold=2))


def animate_image(src: PILImage.Image, seconds: float, max_side: int = 256, fps: int = 4) -> bytes:
    """Image-to-video: an animated GIF zooming slowly into the input; frame 1 is the input."""
    from PIL import Image

    base = src.convert("RGB")
    base.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    w, h = base.size
    count = max(2, min(48, round(seconds * fps)))
    frames = [base]
    for k in range(1, count):
        zoom = 1 + 0.25 * k / (count - 1)
        cw, ch = w / zoom, h / zoom
        box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
        frames.append(base.resize((w, h), Image.Resampling.BILINEAR, box=box))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    return buf.getvalue()


def make_wav(digest: bytes, seconds: float, rate: int = 16000) -> bytes:
    """A short chord whose notes come from `digest`."""
    freqs = [180 + digest[i] * 3 for i in range(3)]
    n = max(1, int(seconds * rate))
    samples = bytearray()
    for i in range(n):
        t = i / rate
        v = sum(math.sin(2 * math.pi * f * t) for f in freqs) / 3
        samples += struct.pack("<h", int(v * 12000 * min(1.0, (n - i) / 800)))
    data = bytes(samples)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def make_gif(digest: bytes, width: int, height: int, frames: int = 6) -> bytes:
    """An animated GIF: a square sliding across a hash-coloured background."""
    from PIL import Image, ImageDraw

    images = []
    for k in range(frames):
        im = Image.new("RGB", (width, height), tuple(digest[:3]))
        side = max(4, height // 3)
        x = (k * (width - side)) // max(1, frames - 1)
        ImageDraw.Draw(im).rectangle([x, height // 3, x + side, height // 3 + side], fill=tuple(digest[3:6]))
        images.append(im)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=120, loop=0)
    return buf.getvalue()


# -- speech --------------------------------------------------------------------------------------
SPEECH_RATE = 16000
MAX_SPEECH_S = 120.0


def speech_plan(text: str, speed: float = 1.0) -> tuple[list[tuple[str, float, float]], float]:
    """Word timings `(word, start_s, end_s)` and the total length of `text` spoken at `speed`:
    each word lasts 0.12 s + 0.045 s a character, with 0.06 s between words, all divided by
    `speed`, and squeezed to fit `MAX_SPEECH_S`."""
    words = text.split()
    k = 1.0 / max(0.25, speed)
    spans, t = [], 0.06 * k
    for word in words:
        length = (0.12 + 0.045 * len(word)) * k
        spans.append((word, t, t + length))
        t += length + 0.06 * k
    if t > MAX_SPEECH_S:
        squeeze = MAX_SPEECH_S / t
        spans = [(w, a * squeeze, b * squeeze) for w, a, b in spans]
        t = MAX_SPEECH_S
    n = max(1, int(round(t * SPEECH_RATE)))
    return [(w, round(a, 3), round(b, 3)) for w, a, b in spans], n / SPEECH_RATE


def _riff_chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def make_speech_wav(text: str, speed: float = 1.0) -> bytes:
    """Text-to-speech: one tone per word (pitch from the word's hash), the text and its word
    timings stored as JSON in a `LIST`/`INFO`/`ICMT` chunk, so `read_wav` gets them back."""
    from array import array

    spans, total = speech_plan(text, speed)
    n = int(round(total * SPEECH_RATE))
    samples = array("h", bytes(2 * n))
    for word, start, end in spans:
        freq = 220 + int.from_bytes(hashlib.sha256(word.lower().encode()).digest()[:2], "big") % 660
        a, b = int(start * SPEECH_RATE), min(n, int(end * SPEECH_RATE))
        step = 2 * math.pi * freq / SPEECH_RATE
        ramp = max(1, min(200, (b - a) // 4))
        for i in range(a, b):
            env = min(1.0, (i - a) / ramp, (b - i) / ramp)
            samples[i] = int(10000 * env * math.sin(step * (i - a)))
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        samples.byteswap()
    meta = json.dumps({"generator": "fal-persona sandbox tts", "text": text,
                       "words": [[w, a, b] for w, a, b in spans]}, ensure_ascii=False).encode() + b"\x00"
    info = _riff_chunk(b"LIST", b"INFO" + _riff_chunk(b"ISFT", b"fal-persona sandbox\x00") + _riff_chunk(b"ICMT", meta))
    fmt = _riff_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, SPEECH_RATE, SPEECH_RATE * 2, 2, 16))
    body = b"WAVE" + fmt + info + _riff_chunk(b"data", samples.tobytes())
    return b"RIFF" + struct.pack("<I", len(body)) + body


@dataclass(frozen=True)
class WavInfo:
    """What `read_wav` learnt: length, and the sandbox's own text when it made the file."""

    duration: float
    rate: int
    channels: int
    text: str | None = None
    words: tuple[tuple[str, float, float], ...] = ()


class UnreadableAudio(ValueError):
    """Not audio the sandbox can read (only RIFF/WAVE PCM is)."""


def _sniff(head: bytes) -> str:
    for magic, name in ((b"ID3", "MP3"), (b"\xff\xfb", "MP3"), (b"OggS", "Ogg"), (b"fLaC", "FLAC"),
                        (b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF")):
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    return "unknown"


def read_wav(data: bytes) -> WavInfo:
    """Parse a RIFF/WAVE PCM file; UnreadableAudio when it is anything else or broken."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise UnreadableAudio(f"not a WAV file (looks like {_sniff(data[:12])}); "
                              "the sandbox reads only RIFF/WAVE PCM audio")
    pos, fmt, frames_bytes, meta = 12, None, None, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if tag == b"fmt " and len(body) >= 16:
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif tag == b"data":
            frames_bytes = len(body)
        elif tag == b"LIST" and body[:4] == b"INFO":
            sub = 4
            while sub + 8 <= len(body):
                stag, ssize = body[sub:sub + 4], struct.unpack("<I", body[sub + 4:sub + 8])[0]
                if stag == b"ICMT":
                    meta = body[sub + 8:sub + 8 + ssize].rstrip(b"\x00")
                sub += 8 + ssize + (ssize % 2)
        pos += 8 + size + (size % 2)
    if fmt is None or frames_bytes is None:
        raise UnreadableAudio("broken WAV file: no fmt or data chunk")
    audio_format, channels, rate, _, block, _ = fmt
    if audio_format not in (1, 3, 0xFFFE) or not channels or not rate or not block:
        raise UnreadableAudio(f"unsupported WAV encoding (format tag {audio_format})")
    duration = round(frames_bytes / block / rate, 3)
    text: str | None = None
    words: tuple[tuple[str, float, float], ...] = ()
    if meta:
        try:
            doc = json.loads(meta.decode())
            if isinstance(doc, dict) and isinstance(doc.get("text"), str):
                text = doc["text"]
                words = tuple((str(w), float(a), float(b)) for w, a, b in doc.get("words", []))
        except (ValueError, TypeError):
            text, words = None, ()
    return WavInfo(duration, rate, channels, text, words)


def make_glb(digest: bytes) -> bytes:
    """A binary glTF 2.0 file with one triangle."""
    s = 0.5 + digest[0] / 255
    positions = struct.pack("<9f", 0, 0, 0, s, 0, 0, 0, s, 0)
    gltf = {
        "asset": {"version": "2.0", "generator": "fal-persona sandbox"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": len(positions)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                       "min": [0, 0, 0], "max": [s, s, 0]}],
    }
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(positions)
    return (b"glTF" + struct.pack("<II", 2, total) + struct.pack("<I", len(js)) + b"JSON" + js
            + struct.pack("<I", len(positions)) + b"BIN\x00" + positions)


def make_safetensors(digest: bytes) -> bytes:
    """A safetensors file holding one 4x4 float32 tensor."""
    data = struct.pack("<16f", *[(b - 128) / 1024 for b in digest[:16]])
    header = json.dumps({"lora_A.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, len(data)]},
                         "__metadata__": {"format": "pt"}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


class MediaStore:
    """Media ids -> specs, with a small LRU cache of generated bytes (thread-safe); outputs that
    cannot be regenerated from a spec (derived from an input) are written to the upload store's
    folder by `put` and served from disk."""

    def __init__(self, uploads: UploadStore | None = None, cache_size: int = 64) -> None:
        self._specs: dict[str, MediaSpec] = {}
        self._stored: dict[str, tuple[Path, int]] = {}
        self._uploads = uploads
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def register(self, ext: str, material: str, *, width: int = 0, height: int = 0, seconds: float = 0.0,
                 text: str = "", speed: float = 1.0) -> str:
        """Record a media item; returns its file name (`<id>.<ext>`)."""
        digest = hashlib.sha256(f"{ext}|{width}x{height}|{seconds}|{speed}|{text}|{material}".encode()).digest()
        media_id = digest.hex()[:32]
        self._specs[media_id] = MediaSpec(ext, digest, width, height, seconds, text, speed)
        return f"{media_id}.{ext}"

    def put(self, ext: str, data: bytes) -> str:
        """Store finished bytes (on disk when there is an upload store); returns the file name."""
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
        if name in self._stored or name in self._cache:
            return name
        from sandbox.uploads import UploadError

        try:
            if self._uploads is None:
                raise UploadError(507, "no upload store", "insufficient_storage")
            self._uploads.reserve(len(data))
        except UploadError:
            # No disk for it: keep it in the LRU cache (served until evicted).
            with self._lock:
                self._cache[name] = data
                self._specs[name.split(".")[0]] = MediaSpec(ext, b"", 0, 0)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return name
        path = self._uploads.new_path(f".{ext}")
        path.write_bytes(data)
        with self._lock:
            self._stored[name] = (path, len(data))
        return name

    def stored_path(self, name: str) -> Path | None:
        """The file on disk behind a stored name, or None."""
        entry = self._stored.get(name)
        return entry[0] if entry is not None else None

    def spec(self, name: str) -> MediaSpec | None:
        """The spec behind a file name, or None."""
        media_id, _, ext = name.partition(".")
        spec = self._specs.get(media_id)
        return spec if spec is not None and spec.ext == ext else None

    def known(self, name: str) -> bool:
        """True when `name` is served (generated or stored)."""
        return name in self._stored or self.spec(name) is not None

    def content(self, name: str) -> bytes | None:
        """The bytes of a registered or stored file (generated on first use)."""
        stored = self._stored.get(name)
        if stored is not None:
            try:
                return stored[0].read_bytes()
            except OSError:
                return None
        spec = self.spec(name)
        if spec is None:
            return None
        with self._lock:
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
        if not spec.digest:
            return None  # a put() without a store, evicted from the cache
        data = _generate(spec)
        with self._lock:
            self._cache[name] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    def size(self, name: str) -> int:
        """File size in bytes."""
        stored = self._stored.get(name)
        if stored is not None:
            return stored[1]
        data = self.content(name)
        return len(data) if data is not None else 0

    def reset(self) -> None:
        """Forget stored outputs (their files go) and the cache; generated specs stay valid."""
        with self._lock:
            stored, self._stored = self._stored, {}
            self._cache.clear()
        for path, size in stored.values():
            path.unlink(missing_ok=True)
            if self._uploads is not None:
                self._uploads.release(size)


def _generate(spec: MediaSpec) -> bytes:
    if spec.ext == "png":
        return make_png(spec.digest, spec.width, spec.height, spec.text)
    if spec.ext == "wav":
        if spec.text:
            return make_speech_wav(spec.text, spec.speed)
        return make_wav(spec.digest, spec.seconds)
    if spec.ext == "gif":
        return make_gif(spec.digest, spec.width, spec.height)
    if spec.ext == "glb":
        return make_glb(spec.digest)
    return make_safetensors(spec.digest)
