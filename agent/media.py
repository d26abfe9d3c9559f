"""Finding, downloading and saving the media a fal.ai result points at. UI-free.

A result is arbitrary JSON; media shows up as objects with a `url` (fal's `File`/`Image`
shape: `url`, `content_type`, `width`, `height`). Downloads go through httpx with a timeout
and a size cap, and `data:` URLs (the sandbox's small images) are decoded in place.

This is the one media module: the TUI (previews, Save), `ask` (saving results) and the
webhook rules' `save_media` action all use it. Two caps, for two different costs:
`PREVIEW_MAX_BYTES` bounds what is held in memory to draw a preview; `MAX_FILE_BYTES` bounds a
file saved to disk, which is streamed there and never held whole.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from tools.errors import AppError

DEFAULT_TIMEOUT_S = 30.0
PREVIEW_MAX_BYTES = 50 * 1024 * 1024
MAX_FILE_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_BYTES = PREVIEW_MAX_BYTES
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
AUDIO_EXTS = (".mp3", ".wav", ".ogg", ".flac", ".m4a", ".aac", ".opus")
MEDIA_EXTS = IMAGE_EXTS + VIDEO_EXTS + AUDIO_EXTS + (".glb", ".obj")


class MediaError(AppError):
    """Base of media failures; the message is readable and names the URL's host only."""


class MediaTooLarge(MediaError):
    """The download exceeded the size cap."""


class MediaDownloadError(MediaError):
    """The download failed (network, HTTP status, bad data URL)."""


# A result's key says what the file is when its type would not: fal's image-to-video in the
# sandbox returns an animated GIF (`image/gif`) under `video`.
VIDEO_KEYS = frozenset({"video", "videos", "video_url"})
AUDIO_KEYS = frozenset({"audio", "audios", "audio_file", "audio_url", "speech"})
MediaKind = Literal["image", "video", "audio", "file"]


def kind_of(content_type: str = "", name: str = "", key: str = "") -> MediaKind:
    """What a file is: image, video, audio, or file; from the result's key, the content type,
    then the name's extension (a `data:` URL's own type counts as a content type)."""
    if key in VIDEO_KEYS:
        return "video"
    if key in AUDIO_KEYS:
        return "audio"
    ctype = content_type.lower()
    if not ctype and name.startswith("data:"):
        ctype = name[5:].split(";", 1)[0].split(",", 1)[0].lower()
    major = ctype.split("/", 1)[0]
    if major == "image":
        return "image"
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    if name.startswith("data:"):
        return "file"
    suffix = Path(urlparse(name).path or name).suffix.lower()
    if suffix in IMAGE_EXTS:
        return "image"
    if suffix in VIDEO_EXTS:
        return "video"
    if suffix in AUDIO_EXTS:
        return "audio"
    return "file"


@dataclass(frozen=True)
class MediaRef:
    """One piece of media found in a result. `key` is the field it sat under (`video`,
    `audio`, `images`...), `duration` the seconds the result states, when it does."""

    url: str
    content_type: str = ""
    width: int | None = None
    height: int | None = None
    key: str = ""
    duration: float | None = None

    @property
    def kind(self) -> MediaKind:
        """image, video, audio or file (see `kind_of`)."""
        return kind_of(self.content_type, self.url, self.key)

    @property
    def is_image(self) -> bool:
        """True when it is a still image (not an animated GIF standing for a video)."""
        return self.kind == "image"


def _looks_like_media(obj: dict[str, Any]) -> bool:
    """An object with a url that is a file: has a content type, or a media extension."""
    url = obj.get("url")
    if not isinstance(url, str) or not url:
        return False
    if isinstance(obj.get("content_type"), str):
        return True
    if url.startswith("data:"):
        return True
    return urlparse(url).path.lower().endswith(MEDIA_EXTS)


def _number(value: Any) -> float | None:
    """A positive finite number from a result field, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 < value < float("inf") else None


def find_media(result: Any, limit: int = 16) -> list[MediaRef]:
    """Every media object in `result` (depth-first, de-duplicated, at most `limit`)."""
    found: list[MediaRef] = []
    seen: set[str] = set()
    stack: list[tuple[str, Any]] = [("", result)]
    while stack and len(found) < limit:
        key, node = stack.pop()
        if isinstance(node, dict):
            if _looks_like_media(node) and node["url"] not in seen:
                seen.add(node["url"])
                found.append(
                    MediaRef(
                        url=node["url"],
                        content_type=str(node.get("content_type") or ""),
                        width=node.get("width") if isinstance(node.get("width"), int) else None,
                        height=node.get("height") if isinstance(node.get("height"), int) else None,
                        key=key,
                        duration=_number(node.get("duration")),
                    )
                )
                continue
            stack.extend(reversed([(str(k), v) for k, v in node.items()]))
        elif isinstance(node, list):
            stack.extend(reversed([(key, v) for v in node]))  # list items keep their field's name
    return found


def text_result(result: Any) -> str | None:
    """The text a media-free result carries at its top level (speech-to-text's `text`, an
    LLM endpoint's `output`), or None."""
    if not isinstance(result, dict) or find_media(result, limit=1):
        return None
    for key in ("text", "output", "transcript", "transcription"):
        value = result.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def decode_data_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, str]:
    """(bytes, content type) of a `data:` URL; MediaDownloadError when malformed."""
    match = re.match(r"data:([^;,]*)(;base64)?,(.*)", url, re.DOTALL)
    if not match:
        raise MediaDownloadError("malformed data: URL")
    content_type = match.group(1) or "application/octet-stream"
    payload = match.group(3)
    if match.group(2):
        if len(payload) * 3 // 4 > max_bytes:
            raise MediaTooLarge(f"inline media is over the {max_bytes} byte cap")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MediaDownloadError("data: URL holds invalid base64") from exc
    else:
        data = unquote(payload).encode()
    if len(data) > max_bytes:
        raise MediaTooLarge(f"inline media is over the {max_bytes} byte cap")
    return data, content_type


async def download(
    url: str,
    *,
    client: Any = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[bytes, str]:
    """Fetch `url` (http(s) or data:) as (bytes, content type), streaming under a size cap."""
    if url.startswith("data:"):
        return decode_data_url(url, max_bytes)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise MediaDownloadError(f"cannot download a {parsed.scheme or 'schemeless'} URL")
    import httpx  # deferred: keeps the TUI's start-up light

    own = client is None
    http = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=True)
    host = parsed.hostname or "?"
    try:
        async with http.stream("GET", url, timeout=timeout_s) as resp:
            if resp.status_code >= 400:
                raise MediaDownloadError(f"download from {host} failed: HTTP {resp.status_code}")
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise MediaTooLarge(f"{host} offers {declared} bytes; the cap is {max_bytes}")
            chunks: list[bytes] = []
            total = 0
            async for chunk in resp.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise MediaTooLarge(f"download from {host} passed the {max_bytes} byte cap")
                chunks.append(chunk)
            ctype = resp.headers.get("content-type", "").split(";")[0].strip()
            return b"".join(chunks), ctype
    except httpx.TimeoutException as exc:
        raise MediaDownloadError(f"download from {host} timed out after {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise MediaDownloadError(f"download from {host} failed: {type(exc).__name__}") from exc
    finally:
        if own:
            await http.aclose()


def _safe_stem(text: str) -> str:
    """A file-name-safe stem."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return stem[:80] or "media"


# Types the platform's mimetypes table may lack or map oddly (no `audio/wav` there; `.oga`).
KNOWN_EXTENSIONS = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav",
                    "audio/vnd.wave": ".wav", "audio/ogg": ".ogg", "audio/mpeg": ".mp3",
                    "audio/mp3": ".mp3", "image/jpeg": ".jpg", "video/mp4": ".mp4"}


def _extension(url: str, content_type: str) -> str:
    """The best file extension for this media."""
    if not url.startswith("data:"):
        suffix = Path(urlparse(url).path).suffix.lower()
        if suffix and len(suffix) <= 6:
            return suffix
    ctype = (content_type or "").split(";")[0].strip().lower()
    guessed = KNOWN_EXTENSIONS.get(ctype) or (mimetypes.guess_extension(ctype) if ctype else None)
    return guessed or ".bin"


def unique_path(folder: Path, stem: str, ext: str) -> Path:
    """`folder/stem.ext`, or `stem-2.ext`, ... so nothing is overwritten."""
    candidate = folder / f"{stem}{ext}"
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{n}{ext}"
        n += 1
    return candidate


def save_bytes(data: bytes, folder: Path, stem: str, ext: str) -> Path:
    """Write `data` to a fresh file in `folder` (created) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = unique_path(folder, _safe_stem(stem), ext)
    path.write_bytes(data)
    return path


async def save_media(ref: MediaRef, folder: Path | None = None, *, stem: str = "",
                     client: Any = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                     max_bytes: int = MAX_FILE_BYTES, replace: bool = False) -> Path:
    """Download `ref` and save it under `folder` (default: the media dir).

    A fresh file (`stem-2.png`, ...) unless `replace`, which writes `stem.ext` over what is
    there (so a retried action saves the same file again, not a copy). An http(s) download is
    streamed to a `.part` file renamed when complete: a failed or oversized download leaves
    nothing behind."""
    if folder is None:
        from agent.locations import media_dir

        folder = media_dir()
    name = stem or (Path(urlparse(ref.url).path).stem if not ref.url.startswith("data:") else "")
    if ref.url.startswith("data:"):
        data, ctype = decode_data_url(ref.url, max_bytes)
        ext = _extension(ref.url, ref.content_type or ctype)
        if replace:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{_safe_stem(name or 'media')}{ext}"
            target.write_bytes(data)
            return target
        return save_bytes(data, folder, name or "media", ext)
    return await _stream_to_file(ref, folder, name or "media", client=client,
                                 timeout_s=timeout_s, max_bytes=max_bytes, replace=replace)


async def save_all(document: Any, folder: Path, prefix: str, *, client: Any = None,
                   max_bytes: int = MAX_FILE_BYTES, limit: int = 64) -> list[Path]:
    """Save every media file in `document` into `folder` as `<prefix>-<n><ext>`, in order."""
    safe = _safe_stem(prefix)
    saved: list[Path] = []
    for ref in find_media(document, limit=limit):
        saved.append(await save_media(ref, folder, stem=f"{safe}-{len(saved) + 1}", client=client,
                                      max_bytes=max_bytes, replace=True))
    return saved


async def _stream_to_file(ref: MediaRef, folder: Path, stem: str, *, client: Any,
                          timeout_s: float, max_bytes: int, replace: bool) -> Path:
    parsed = urlparse(ref.url)
    if parsed.scheme not in ("http", "https"):
        raise MediaDownloadError(f"cannot download a {parsed.scheme or 'schemeless'} URL")
    import httpx  # deferred: keeps the TUI's start-up light

    folder.mkdir(parents=True, exist_ok=True)
    host = parsed.hostname or "?"
    own = client is None
    http = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=True)
    partial: Path | None = None
    try:
        async with http.stream("GET", ref.url, timeout=timeout_s) as resp:
            if resp.status_code >= 400:
                raise MediaDownloadError(f"download from {host} failed: HTTP {resp.status_code}")
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise MediaTooLarge(f"{host} offers {declared} bytes; the cap is {max_bytes}")
            ctype = resp.headers.get("content-type", "").split(";")[0].strip()
            ext = _extension(ref.url, ref.content_type or ctype)
            target = (folder / f"{_safe_stem(stem)}{ext}" if replace
                      else unique_path(folder, _safe_stem(stem), ext))
            partial = target.with_name(target.name + ".part")
            total = 0
            with partial.open("wb") as out:
                async for chunk in resp.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise MediaTooLarge(f"download from {host} passed the {max_bytes} byte cap")
                    out.write(chunk)
        partial.replace(target)
        return target
    except httpx.TimeoutException as exc:
        raise MediaDownloadError(f"download from {host} timed out after {timeout_s:g} s") from exc
    except httpx.HTTPError as exc:
        raise MediaDownloadError(f"download from {host} failed: {type(exc).__name__}") from exc
    except OSError as exc:
        raise MediaError(f"could not write the file from {host}: {exc.strerror or exc}") from exc
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
        if own:
            await http.aclose()


def save_result_json(result: Any, folder: Path | None = None, *, stem: str = "result") -> Path:
    """Save any result as pretty JSON (for results that hold no media)."""
    if folder is None:
        from agent.locations import media_dir

        folder = media_dir()
    text = json.dumps(result, indent=2, ensure_ascii=False, default=str)
    return save_bytes(text.encode(), folder, stem, ".json")


def viewer_command(path: Path, platform: str | None = None) -> list[str] | None:
    """The command that opens `path` in the system viewer, or None when there is none."""
    platform = platform or sys.platform
    if platform == "darwin":
        opener = shutil.which("open")
    elif platform.startswith("win"):
        return ["cmd", "/c", "start", "", str(path)]
    else:
        opener = shutil.which("xdg-open")
    return [opener, str(path)] if opener else None


def open_in_viewer(path: Path) -> str | None:
    """Open `path` in the system viewer; returns a readable error, or None on success."""
    cmd = viewer_command(path)
    if cmd is None:
        return f"no system viewer found (xdg-open/open); the file is at {path}"
    try:
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return f"could not start the viewer ({exc.strerror or exc}); the file is at {path}"
    return None
