"""The upload store behind the CDN emulation: tokens, files on disk, multipart state, lifecycle.

Only metadata lives in memory; every byte goes to disk as it arrives (the routes stream request
bodies through `write_stream`), so a 200 MiB upload costs a few KiB of RAM. Files live in one
folder per sandbox instance, removed when the sandbox closes or resets.

Times (token expiry, lifecycle expiry) are sandbox-clock seconds, so a test can advance past
them. A token's `expires_at` is sent as ISO-8601 with an explicit UTC offset, as fal_client
compares it with an aware `datetime.now(timezone.utc)`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MAX_TOKENS = 1000
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(Exception):
    """An upload refused: HTTP status, message and fal-style error type."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


@dataclass
class Part:
    """One received multipart part."""

    number: int
    size: int
    etag: str
    path: Path


@dataclass
class StoredFile:
    """One uploaded (or being uploaded) file."""

    file_id: str
    file_name: str
    content_type: str
    access_url: str
    via: str
    """`cdn` (one request), `multipart` or `storage` (initiate + PUT)."""
    created_at: float
    path: Path
    size: int = 0
    complete: bool = False
    expires_at: float | None = None
    lifecycle: dict[str, Any] | None = None
    upload_id: str | None = None
    put_secret: str | None = None
    parts: dict[int, Part] = field(default_factory=dict)
    parts_received: int = 0
    """Part PUTs answered 200, re-sent parts included."""
    joined_parts: list[int] = field(default_factory=list)
    """The part numbers a completed multipart upload was joined from."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `/_sandbox/uploads`."""
        return {"file_id": self.file_id, "file_name": self.file_name, "content_type": self.content_type,
                "access_url": self.access_url, "via": self.via, "size": self.size, "complete": self.complete,
                "created_at": self.created_at, "expires_at": self.expires_at, "lifecycle": self.lifecycle,
                "upload_id": self.upload_id, "parts_received": self.parts_received,
                "part_numbers": list(self.joined_parts) if self.complete else sorted(self.parts)}


def safe_name(name: str | None, default: str = "upload.bin") -> str:
    """A file name safe in a URL path segment and on disk."""
    cleaned = _NAME_OK.sub("_", (name or "").strip()).strip("._")[:120]
    return cleaned or default


def parse_lifecycle(raw: str | None) -> dict[str, Any] | None:
    """The `X-Fal-Object-Lifecycle` JSON; UploadError 400 when it is not a valid object."""
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise UploadError(400, "X-Fal-Object-Lifecycle must be a JSON object", "bad_request") from None
    if not isinstance(value, dict):
        raise UploadError(400, "X-Fal-Object-Lifecycle must be a JSON object", "bad_request")
    seconds = value.get("expiration_duration_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0):
        raise UploadError(400, "expiration_duration_seconds must be a number of seconds >= 0", "bad_request")
    return value


def iso_utc(ts: float) -> str:
    """ISO-8601 with a +00:00 offset."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


class UploadStore:
    """Tokens and files of one sandbox. Thread-safe for the bookkeeping; byte I/O is per file."""

    def __init__(self, directory: Path | None, parent: Path | None, *, max_file_bytes: int,
                 max_total_bytes: int, token_ttl_s: float) -> None:
        self._fixed = directory
        self._parent = parent
        self._dir: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self.max_file_bytes, self.max_total_bytes, self.token_ttl_s = max_file_bytes, max_total_bytes, token_ttl_s
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self.files: dict[str, StoredFile] = {}
        self._by_upload: dict[str, str] = {}
        self.used_bytes = 0
        self.tokens_issued = 0
        self.parts_received = 0

    # -- disk ---------------------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        """The folder files are written to, created on first use."""
        if self._dir is None:
            if self._fixed is not None:
                self._fixed.mkdir(parents=True, exist_ok=True)
                self._dir = self._fixed
            else:
                if self._parent is not None:
                    self._parent.mkdir(parents=True, exist_ok=True)
                self._dir = Path(tempfile.mkdtemp(prefix="sandbox-uploads-", dir=self._parent))
                self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        return self._dir

    def new_path(self, suffix: str = "") -> Path:
        """A fresh file path in the store folder."""
        return self.directory / f"{secrets.token_hex(12)}{suffix}"

    def reserve(self, size: int) -> None:
        """Count `size` more bytes on disk, or UploadError 507 when the store is full."""
        with self._lock:
            if self.used_bytes + size > self.max_total_bytes:
                raise UploadError(507, f"The sandbox upload store is full ({self.max_total_bytes} bytes)",
                                  "insufficient_storage")
            self.used_bytes += size

    def release(self, size: int) -> None:
        """Give back `size` bytes."""
        with self._lock:
            self.used_bytes = max(0, self.used_bytes - size)

    async def write_stream(self, chunks: AsyncIterator[bytes], path: Path, limit: int) -> tuple[int, str]:
        """Write an async byte stream to `path` (size, md5 hex); UploadError 413 past `limit`."""
        digest, size, reserved = hashlib.md5(usedforsecurity=False), 0, 0
        try:
            with open(path, "wb") as fh:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > limit:
                        raise UploadError(413, f"File exceeds {limit} bytes", "payload_too_large")
                    self.reserve(len(chunk))
                    reserved += len(chunk)
                    fh.write(chunk)
                    digest.update(chunk)
        except BaseException:
            self.release(reserved)
            path.unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    # -- tokens -------------------------------------------------------------------------------
    def issue_token(self, key_id: str | None, now: float) -> tuple[str, float]:
        """A new CDN token and its expiry (sandbox time)."""
        token = secrets.token_urlsafe(24)
        expires = now + self.token_ttl_s
        with self._lock:
            for old, (_, exp) in list(self._tokens.items()):
                if exp <= now:
                    del self._tokens[old]
            self._tokens[token] = (key_id, expires)
            while len(self._tokens) > _MAX_TOKENS:
                self._tokens.popitem(last=False)
            self.tokens_issued += 1
        return token, expires

    def check_token(self, header: str | None, now: float) -> str | None:
        """The key id behind a `Bearer <token>` header; UploadError 401 when missing, unknown or expired."""
        if not header or not header.strip():
            raise UploadError(401, "Missing Authorization header: send the upload token "
                                   "(POST /storage/auth/token) as '<token_type> <token>'", "authorization_error")
        scheme, _, value = header.strip().partition(" ")
        entry = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            raise UploadError(401, "Invalid upload token", "authorization_error")
        if entry[1] <= now:
            raise UploadError(401, "Upload token expired; request a new one", "authorization_error")
        return entry[0]

    # -- files --------------------------------------------------------------------------------
    def create(self, *, base_url: str, file_name: str | None, content_type: str | None, via: str, now: float,
               lifecycle: dict[str, Any] | None) -> StoredFile:
        """Register a new (not yet complete) file (expired files are swept first)."""
        self.sweep(now)
        file_id = secrets.token_hex(8)
        name = safe_name(file_name)
        seconds = (lifecycle or {}).get("expiration_duration_seconds")
        entry = StoredFile(file_id=file_id, file_name=name,
                           content_type=(content_type or "application/octet-stream").split(";")[0].strip()
                           or "application/octet-stream",
                           access_url=f"{base_url}/files/sandbox/{file_id}/{name}", via=via, created_at=now,
                           path=self.new_path(), lifecycle=lifecycle,
                           expires_at=now + float(seconds) if seconds else None)
        with self._lock:
            self.files[file_id] = entry
        return entry

    def sweep(self, now: float) -> None:
        """Delete every file past its lifecycle expiry."""
        for file_id, entry in list(self.files.items()):
            if entry.expires_at is not None and now >= entry.expires_at:
                self.delete(file_id)

    def start_multipart(self, entry: StoredFile) -> str:
        """Give `entry` a multipart upload id."""
        entry.upload_id = secrets.token_urlsafe(16)
        with self._lock:
            self._by_upload[entry.upload_id] = entry.file_id
        return entry.upload_id

    def get(self, file_id: str, now: float) -> StoredFile | None:
        """The file (complete or not), or None when unknown or expired (an expired file is deleted)."""
        entry = self.files.get(file_id)
        if entry is not None and entry.expires_at is not None and now >= entry.expires_at:
            self.delete(file_id)
            return None
        return entry

    def multipart(self, file_id: str, upload_id: str, now: float) -> StoredFile | None:
        """The pending multipart upload `upload_id` of `file_id`."""
        entry = self.get(file_id, now)
        if entry is None or entry.upload_id != upload_id or self._by_upload.get(upload_id) != file_id:
            return None
        return entry

    def add_part(self, entry: StoredFile, number: int, size: int, etag: str, path: Path) -> None:
        """Record a received part (a re-sent part replaces the earlier one)."""
        with self._lock:
            old = entry.parts.get(number)
            entry.parts[number] = Part(number, size, etag, path)
            entry.parts_received += 1
            self.parts_received += 1
        if old is not None:
            old.path.unlink(missing_ok=True)
            self.release(old.size)

    def assemble(self, entry: StoredFile, numbers: list[int]) -> None:
        """Concatenate the listed parts into the final file (blocking: run it in a thread)."""
        total = sum(entry.parts[n].size for n in numbers)
        if total > self.max_file_bytes:
            raise UploadError(413, f"File exceeds {self.max_file_bytes} bytes", "payload_too_large")
        self.reserve(total)
        try:
            # The first part becomes the file (a rename, no copy); the others are appended by
            # the kernel (copy_file_range), so joining costs no pass through Python.
            first = entry.parts[numbers[0]]
            os.replace(first.path, entry.path)
            first.path = entry.path
            with open(entry.path, "r+b") as out:  # not "ab": copy_file_range refuses O_APPEND
                out.seek(0, os.SEEK_END)
                for n in numbers[1:]:
                    with open(entry.parts[n].path, "rb") as src:
                        _append(src, out, entry.parts[n].size)
        except BaseException:
            entry.path.unlink(missing_ok=True)
            self.release(total)
            raise
        for part in entry.parts.values():
            if part.path != entry.path:
                part.path.unlink(missing_ok=True)
            self.release(part.size)
        entry.parts.clear()
        entry.size, entry.complete, entry.joined_parts = total, True, numbers
        with self._lock:
            self._by_upload.pop(entry.upload_id or "", None)

    def delete(self, file_id: str) -> None:
        """Forget a file and remove its bytes."""
        with self._lock:
            entry = self.files.pop(file_id, None)
        if entry is None:
            return
        for part in entry.parts.values():
            part.path.unlink(missing_ok=True)
            self.release(part.size)
        entry.parts.clear()
        if entry.path.exists():
            entry.path.unlink(missing_ok=True)
            self.release(entry.size)

    def snapshot(self) -> dict[str, Any]:
        """Everything `/_sandbox/uploads` shows."""
        with self._lock:
            files = list(self.files.values())
        return {"uploads": [f.to_dict() for f in files], "parts_received": self.parts_received,
                "tokens_issued": self.tokens_issued, "used_bytes": self.used_bytes}

    def reset(self) -> None:
        """Forget every file and token, removing the bytes."""
        for file_id in list(self.files):
            self.delete(file_id)
        with self._lock:
            self._tokens.clear()
            self._by_upload.clear()
            self.parts_received = self.tokens_issued = 0
            self.used_bytes = 0

    def close(self) -> None:
        """Remove the folder (when the store made it)."""
        self.reset()
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer, self._dir = None, None
        elif self._dir is not None and self._fixed is not None:
            # A folder given by the caller is kept; only what the store wrote is gone.
            self._dir = None


def _append(src: Any, out: Any, size: int) -> None:
    """Append `size` bytes of `src` to `out`: in the kernel where it can, else by chunks."""
    out.flush()
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        left = size
        try:
            while left > 0:
                done = copy_range(src.fileno(), out.fileno(), left)
                if done == 0:
                    break
                left -= done
            if left == 0:
                return
        except OSError:
            pass  # e.g. across file systems that refuse it: the plain copy below still works
        src.seek(size - left)
    shutil.copyfileobj(src, out, 1024 * 1024)
