"""The built-in `save_media` action: find image/audio/video URLs in a result and download them."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

MEDIA_PREFIXES = ("image/", "audio/", "video/")
MEDIA_SUFFIXES = frozenset(
    ".png .jpg .jpeg .webp .gif .bmp .tiff .avif .heic .svg "
    ".mp3 .wav .ogg .flac .m4a .aac .opus .mp4 .webm .mov .mkv .avi .m4v".split()
)
MAX_MEDIA_BYTES = 512 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class MediaError(Exception):
    """A media file could not be downloaded or written."""


def _suffix(url: str, content_type: str | None) -> str:
    """A file extension for the media: from the URL path, else from the content type."""
    path_suffix = Path(urlsplit(url).path).suffix.lower()
    if path_suffix in MEDIA_SUFFIXES:
        return path_suffix
    if content_type:
        guessed = mimetypes.guess_extension(content_type.split(";")[0].strip())
        if guessed:
            return guessed
    return ".bin"


def find_media(document: Any) -> Iterator[tuple[str, str | None]]:
    """(url, content_type) of every media file object in a JSON document, in order."""
    if isinstance(document, dict):
        url = document.get("url")
        if isinstance(url, str) and urlsplit(url).scheme in ("http", "https"):
            ctype = document.get("content_type")
            ctype = ctype if isinstance(ctype, str) else None
            if (ctype and ctype.startswith(MEDIA_PREFIXES)) or (
                Path(urlsplit(url).path).suffix.lower() in MEDIA_SUFFIXES
            ):
                yield url, ctype
        for value in document.values():
            yield from find_media(value)
    elif isinstance(document, list):
        for item in document:
            yield from find_media(item)


async def save_media(
    document: Any,
    folder: Path,
    prefix: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_bytes: int = MAX_MEDIA_BYTES,
) -> list[Path]:
    """Download every media URL in `document` into `folder` as `<prefix>-<n><ext>`."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = _UNSAFE.sub("_", prefix)[:100] or "media"
    owned = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=True)
    saved: list[Path] = []
    try:
        seen: set[str] = set()
        for url, ctype in find_media(document):
            if url in seen:
                continue
            seen.add(url)
            target = folder / f"{safe}-{len(saved) + 1}{_suffix(url, ctype)}"
            await _download(http, url, target, max_bytes)
            saved.append(target)
    finally:
        if owned:
            await http.aclose()
    return saved


async def _download(http: httpx.AsyncClient, url: str, target: Path, max_bytes: int) -> None:
    """Stream one URL to `target` via a temp file, so a retry never sees half a file."""
    partial = target.with_name(target.name + ".part")
    host = urlsplit(url).netloc
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                raise MediaError(f"{host} answered HTTP {response.status_code}")
            size = 0
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaError(f"a file from {host} is larger than {max_bytes} bytes")
                    out.write(chunk)
        partial.replace(target)
    except httpx.HTTPError as exc:
        raise MediaError(f"could not download from {host} ({type(exc).__name__})") from exc
    finally:
        partial.unlink(missing_ok=True)
