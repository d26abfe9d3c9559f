"""Local-file rules for uploads (shared/fal-api.md 3.6), as small functions tested on their own.

* :func:`check_file` refuses what cannot be sent (missing, a directory, unreadable, empty,
  over the size limit) with the typed :class:`~tools.fal.errors.UploadFileError` family.
* :func:`lifecycle_header` turns a preset (``never``, ``immediate``, ``1h``, ``1d``, ``7d``,
  ``30d``, ``1y``) or a number of seconds into the JSON that fal's lifecycle headers carry.
* :func:`content_type_for` guesses the MIME type from the file name; :func:`header_file_name`
  makes a name safe for the ``X-Fal-File-Name`` header.
* :func:`read_part` reads one part of a file, so a multipart upload never holds the whole file.
"""

from __future__ import annotations

import json
import math
import mimetypes
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tools.fal.errors import (
    FileMissingError,
    FileTooLargeError,
    FileUnreadableError,
    InputError,
    NotAFileError,
    UploadFileError,
)

__all__ = [
    "MIB", "MULTIPART_THRESHOLD", "PART_SIZE", "DEFAULT_CONTENT_TYPE", "LIFECYCLE_PRESETS", "Lifecycle", "LocalFile",
    "human_size", "check_size", "check_file", "read_part", "part_count", "part_span", "lifecycle_seconds",
    "lifecycle_header", "content_type_for", "header_file_name"
]


MIB = 1024 * 1024
MULTIPART_THRESHOLD = 100 * MIB
"""Files larger than this go up in parts (fal_client's threshold)."""
PART_SIZE = 10 * MIB
"""Bytes per part of a multipart upload."""
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# fal_client's presets. "immediate" is a short positive lifetime, because the storage backends
# read 0 (and no value) as "never expires".
LIFECYCLE_PRESETS: dict[str, int | None] = {
    "never": None, "immediate": 60, "1h": 3600, "1d": 86400, "7d": 604800, "30d": 2592000,
    "1y": 31536000,
}
Lifecycle = str | int
"""A lifecycle preset name (see LIFECYCLE_PRESETS) or a whole number of seconds > 0."""
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*(\s*;\s*[\w.+-]+=[\w.+\-\"]+)*")
_NAME_SAFE = "-_.~ ()[]+,=@!"


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file that passed the checks: its resolved path, name and size in bytes."""

    path: Path
    name: str
    size: int


def human_size(size: int) -> str:
    """'1.5 MiB'-style text for a byte count."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def check_size(size: int, limit_bytes: int, what: str) -> None:
    """Refuse an empty payload or one over the limit."""
    if size == 0:
        raise UploadFileError(f"{what} is empty (0 bytes); there is nothing to upload",
                              path=what)
    if size > limit_bytes:
        raise FileTooLargeError(
            f"{what} is {human_size(size)}, over the upload limit of {human_size(limit_bytes)} "
            "(FAL_UPLOAD_MAX_BYTES)", path=what, size=size, limit_bytes=limit_bytes)


def check_file(path: str | os.PathLike[str], limit_bytes: int) -> LocalFile:
    """The file at `path` if it can be uploaded; an UploadFileError subclass saying why not."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise UploadFileError("path is empty; give the path of a local file, e.g. "
                              "'~/Pictures/photo.png'")
    text = str(path).strip() if isinstance(path, str) else os.fspath(path)
    if "\x00" in text:
        raise UploadFileError("path contains a NUL character", path=text.replace("\x00", "?"))
    if re.match(r"(?i)(https?|data|ftp|s3|gs):", text):
        raise UploadFileError(f"{text[:80]!r} is a URL, not a local file; a model takes URLs as "
                              "they are, in its arguments (no upload needed)", path=text[:80])
    resolved = Path(text).expanduser()
    try:
        info = resolved.stat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FileMissingError(f"no file at {text!r}", path=text) from exc
    except PermissionError as exc:
        raise FileUnreadableError(f"cannot look at {text!r}: permission denied", path=text) \
            from exc
    except OSError as exc:
        raise FileUnreadableError(f"cannot look at {text!r}: {exc.strerror or exc}", path=text) \
            from exc
    if stat.S_ISDIR(info.st_mode):
        raise NotAFileError(f"{text!r} is a directory, not a file", path=text)
    if not stat.S_ISREG(info.st_mode):
        raise NotAFileError(f"{text!r} is not a regular file (a device, pipe or socket)",
                            path=text)
    check_size(info.st_size, limit_bytes, text)
    try:
        with open(resolved, "rb") as fh:
            fh.read(1)
    except PermissionError as exc:
        raise FileUnreadableError(f"cannot read {text!r}: permission denied", path=text) from exc
    except OSError as exc:
        raise FileUnreadableError(f"cannot read {text!r}: {exc.strerror or exc}", path=text) \
            from exc
    return LocalFile(path=resolved, name=resolved.name, size=info.st_size)


def read_part(path: Path, offset: int, length: int) -> bytes:
    """Exactly `length` bytes at `offset`; FileUnreadableError if the file shrank or failed."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
    except OSError as exc:
        raise FileUnreadableError(f"reading {str(path)!r} failed: {exc.strerror or exc}",
                                  path=str(path)) from exc
    if len(data) != length:
        raise FileUnreadableError(f"{str(path)!r} changed while it was being uploaded "
                                  f"(expected {length} bytes at offset {offset}, "
                                  f"got {len(data)})", path=str(path))
    return data


def part_count(size: int, part_size: int = PART_SIZE) -> int:
    """Number of parts a payload of `size` bytes is cut into."""
    return max(1, math.ceil(size / part_size))


def part_span(number: int, size: int, part_size: int = PART_SIZE) -> tuple[int, int]:
    """(offset, length) of part `number` (from 1)."""
    offset = (number - 1) * part_size
    return offset, min(part_size, size - offset)


def lifecycle_seconds(lifecycle: Lifecycle | None) -> int | None:
    """Seconds until the upload expires (None: never, or fal's default when not given)."""
    if lifecycle is None:
        return None
    if isinstance(lifecycle, bool):
        raise InputError("lifecycle must be a preset name or a number of seconds, not a boolean")
    if isinstance(lifecycle, int):
        if lifecycle <= 0:
            raise InputError(f"lifecycle seconds must be greater than 0, got {lifecycle}")
        return lifecycle
    if isinstance(lifecycle, str):
        text = lifecycle.strip().lower()
        if text in LIFECYCLE_PRESETS:
            return LIFECYCLE_PRESETS[text]
        if text.isdigit():
            return lifecycle_seconds(int(text))
    raise InputError(f"lifecycle must be one of {', '.join(LIFECYCLE_PRESETS)} or a whole "
                     f"number of seconds > 0, got {lifecycle!r}")


def lifecycle_header(lifecycle: Lifecycle | None) -> str | None:
    """The JSON value of X-Fal-Object-Lifecycle(-Preference), or None to send neither."""
    if lifecycle is None:
        return None
    seconds = lifecycle_seconds(lifecycle)
    body = {} if seconds is None else {"expiration_duration_seconds": seconds}
    return json.dumps(body, separators=(",", ":"))


def content_type_for(name: str, override: str | None = None) -> str:
    """The MIME type to send: `override` if given (checked), else guessed from the name."""
    if override is not None:
        text = override.strip()
        if not _MIME.fullmatch(text):
            raise InputError(f"content_type must look like 'type/subtype' (e.g. 'image/png'), "
                             f"got {override!r}")
        return text
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def header_file_name(name: str) -> str:
    """The file name as an ASCII header value (other characters percent-encoded)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload.bin"
    return quote(base, safe=_NAME_SAFE)
