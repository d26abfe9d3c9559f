"""Generated media the sandbox serves itself at `/_media/<id>.<ext>`.

Every file is real and small, and derived from a hash of what produced it (prompt, seed...),
so different inputs give different bytes and the same input gives the same bytes:
- images: PNG (RGB, at most 256 px a side), built with zlib + struct;
- audio: WAV (16-bit PCM mono, 16 kHz), a short chord;
- video: an animated GIF (a few frames, made with Pillow). A valid MP4 needs an encoder the
  sandbox does not ship, so video objects say `content_type: image/gif` honestly;
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


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def make_png(digest: bytes, width: int, height: int) -> bytes:
    """A gradient-and-stripes PNG whose colours come from `digest`."""
    r0, g0, b0, rx, gy, bxy, stripe = digest[:7]
    stripe = 4 + stripe % 12
    rows = []
    for y in range(height):
        g = (g0 + y * (1 + gy % 5)) & 0xFF
        row = bytearray(b"\x00")  # filter type: none
        band = ((y // stripe) & 1) * 64
        for x in range(width):
            row += bytes(((r0 + x * (1 + rx % 5)) & 0xFF, g, (b0 + band + ((x // 8 ^ y // 8) & 1) * (32 + bxy % 64)) & 0xFF))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + _png_chunk(b"IEND", b""))


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
    """Media ids -> specs, with a small LRU cache of generated bytes (thread-safe)."""

    def __init__(self, cache_size: int = 64) -> None:
        self._specs: dict[str, MediaSpec] = {}
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def register(self, ext: str, material: str, *, width: int = 0, height: int = 0, seconds: float = 0.0) -> str:
        """Record a media item; returns its file name (`<id>.<ext>`)."""
        digest = hashlib.sha256(f"{ext}|{width}x{height}|{seconds}|{material}".encode()).digest()
        media_id = digest.hex()[:32]
        self._specs[media_id] = MediaSpec(ext, digest, width, height, seconds)
        return f"{media_id}.{ext}"

    def spec(self, name: str) -> MediaSpec | None:
        """The spec behind a file name, or None."""
        media_id, _, ext = name.partition(".")
        spec = self._specs.get(media_id)
        return spec if spec is not None and spec.ext == ext else None

    def content(self, name: str) -> bytes | None:
        """The bytes of a registered file, generated on first use."""
        spec = self.spec(name)
        if spec is None:
            return None
        with self._lock:
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
        data = _generate(spec)
        with self._lock:
            self._cache[name] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    def size(self, name: str) -> int:
        """File size in bytes."""
        data = self.content(name)
        return len(data) if data is not None else 0


def _generate(spec: MediaSpec) -> bytes:
    if spec.ext == "png":
        return make_png(spec.digest, spec.width, spec.height)
    if spec.ext == "wav":
        return make_wav(spec.digest, spec.seconds)
    if spec.ext == "gif":
        return make_gif(spec.digest, spec.width, spec.height)
    if spec.ext == "glb":
        return make_glb(spec.digest)
    return make_safetensors(spec.digest)
