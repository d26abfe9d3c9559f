"""Media inputs: fetch and read the files a submit points at, before the job is queued.

A media URL (the schema's `format: uri` fields) may be
- a file of this sandbox: an upload (`/files/sandbox/<id>/<name>`) or an output (`/_media/<name>`),
  on this sandbox's own host, or on any loopback host naming a file this sandbox has; read
  straight from the store, no HTTP;
- a `data:` URI (`data:<mime>;base64,...`);
- any other loopback URL (127.0.0.0/8, ::1, localhost), fetched over HTTP(S) with a timeout
  (`media_fetch_timeout_s`) and a size cap (`media_max_bytes`).
Every other host is refused: the sandbox never reaches the internet.

What the generators need is read here, once: images are decoded (Pillow) and shrunk to the
size their generator uses (`IMAGE_SIDES`), WAV audio is parsed (`media.read_wav`), archives are
checked to be zip files; only that small result stays with the job, and it is dropped when the
job completes. A problem becomes one of fal's model errors (`file_download_error`,
`file_too_large`, `image_load_error`, `image_too_large`, `unsupported_audio_format`,
`invalid_archive`) at `["body", field]`, which the job answers with 422 (or the submit does,
with `validate_on_submit`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import ipaddress
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

from sandbox import schemas
from sandbox.media import UnreadableAudio, WavInfo, read_wav

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

    from sandbox.state import SandboxState

IMAGE_SIDES = {"i2i": 512, "upscale": 1024, "i2v": 256, "3d": 256}
"""Longest side an input image is shrunk to, per family (the generators' working size)."""
MAX_PIXELS = 40_000_000


@dataclass
class MediaInput:
    """One read media input."""

    kind: str
    digest: str
    """sha256 of the bytes (seeds the generators: another input, another output)."""
    size: int
    image: PILImage.Image | None = None
    audio: WavInfo | None = None


class MediaProblem(Exception):
    """A media input the model cannot use: fal's error type, message and context."""

    def __init__(self, kind: str, message: str, ctx: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.ctx = kind, message, ctx


def model_error(kind: str, field: str, message: str, value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of a model error's `detail`, as fal's model errors look."""
    item: dict[str, Any] = {"loc": ["body", field], "msg": message, "type": kind,
                            "url": f"https://docs.fal.ai/errors#{kind}", "input": schemas.clip(value, 120)}
    if ctx:
        item["ctx"] = ctx
    return item


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost (no DNS lookups)."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _data_uri(url: str, limit: int) -> bytes:
    head, sep, payload = url[5:].partition(",")
    if not sep:
        raise MediaProblem("file_download_error", "Failed to read the data URI: no ',' before the data")
    if len(payload) > limit * 4 // 3 + 8:
        raise MediaProblem("file_too_large", f"File is larger than {limit} bytes", {"max_size": limit})
    try:
        data = base64.b64decode(payload, validate=False) if head.endswith(";base64") else unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise MediaProblem("file_download_error", "Failed to read the data URI: invalid base64") from None
    return data


def _own_file(state: SandboxState, path: str, limit: int) -> bytes | None:
    """Bytes of a file this sandbox serves at `path`, None when the path is not one of its files."""
    segs = [s for s in path.split("/") if s]
    now = state.clock.now()
    if len(segs) == 4 and segs[:2] == ["files", "sandbox"]:
        entry = state.uploads.get(segs[2], now)
        if entry is None or not entry.complete or entry.file_name != segs[3]:
            return None
        if entry.size > limit:
            raise MediaProblem("file_too_large", f"File is larger than {limit} bytes", {"max_size": limit})
        return entry.path.read_bytes()
    if len(segs) == 2 and segs[0] == "_media" and state.media.known(segs[1]):
        if state.media.size(segs[1]) > limit:
            raise MediaProblem("file_too_large", f"File is larger than {limit} bytes", {"max_size": limit})
        return state.media.content(segs[1])
    return None


async def _http(url: str, limit: int, timeout: float) -> bytes:
    chunks, size = [], 0
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            async with client.stream("GET", url) as reply:
                if reply.status_code != 200:
                    raise MediaProblem("file_download_error",
                                       f"Failed to download the file: HTTP {reply.status_code}")
                async for chunk in reply.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise MediaProblem("file_too_large", f"File is larger than {limit} bytes", {"max_size": limit})
                    chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise MediaProblem("file_download_error",
                           f"Failed to download the file: {type(exc).__name__}") from None
    return b"".join(chunks)


async def fetch(state: SandboxState, url: str, own_netloc: str) -> bytes:
    """The bytes behind a media URL (see the module doc); MediaProblem when unusable."""
    limit = state.config.media_max_bytes
    if url.startswith("data:"):
        return _data_uri(url, limit)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MediaProblem("file_download_error", "Failed to download the file: not an http(s) or data: URL")
    own = parts.netloc == own_netloc
    if own or is_loopback(parts.hostname):
        data = _own_file(state, parts.path, limit)
        if data is not None:
            return data
        if own:
            raise MediaProblem("file_download_error", "Failed to download the file: HTTP 404 (no such file "
                                                      "on this sandbox; uploads expire with their lifecycle)")
        return await _http(url, limit, state.config.media_fetch_timeout_s)
    raise MediaProblem("file_download_error",
                       f"Failed to download the file: {parts.hostname} is not reachable from the sandbox, which "
                       "fetches nothing from the internet; upload the file to the sandbox, or use a data: URI "
                       "or a loopback URL")


def _image(data: bytes, side: int) -> PILImage.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        im: Image.Image = Image.open(io.BytesIO(data))
        if im.width * im.height > MAX_PIXELS:
            raise MediaProblem("image_too_large", f"Image has more than {MAX_PIXELS} pixels",
                               {"max_pixels": MAX_PIXELS, "width": im.width, "height": im.height})
        im.draft("RGB", (side, side))
        im = im.convert("RGB")
    except MediaProblem:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = "not an image format the sandbox reads" if isinstance(exc, UnidentifiedImageError) else "broken file"
        raise MediaProblem("image_load_error", f"Failed to load the image: {reason}") from None
    im.thumbnail((side, side), Image.Resampling.LANCZOS)
    return im


def _read(kind: str, family: str, data: bytes) -> MediaInput:
    item = MediaInput(kind, hashlib.sha256(data).hexdigest(), len(data))
    if kind == "image":
        item.image = _image(data, IMAGE_SIDES.get(family, 256))
        if family == "3d":
            item.image = None  # checked, not needed by the mesh generator
    elif kind == "audio" and family == "stt":
        try:
            item.audio = read_wav(data)
        except UnreadableAudio as exc:
            raise MediaProblem("unsupported_audio_format", f"Unsupported audio format: {exc}") from None
    elif kind == "archive" and not zipfile.is_zipfile(io.BytesIO(data)):
        raise MediaProblem("invalid_archive", "Failed to read the archive: not a zip file")
    return item


async def resolve(state: SandboxState, family: str, body: dict[str, Any],
                  own_netloc: str) -> tuple[dict[str, MediaInput], list[dict[str, Any]]]:
    """Read every media field of a schema-valid `body`: (inputs by field, model errors)."""
    media: dict[str, MediaInput] = {}
    errors: list[dict[str, Any]] = []
    for field, kind in schemas.media_fields(family).items():
        url = body.get(field)
        if not isinstance(url, str):
            continue
        try:
            data = await fetch(state, url, own_netloc)
            media[field] = await asyncio.to_thread(_read, kind, family, data)
        except MediaProblem as exc:
            errors.append(model_error(exc.kind, field, exc.message, url, exc.ctx))
    return media, errors
