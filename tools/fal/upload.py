"""Uploading local files (or bytes) to fal's CDN, as shared/fal-api.md 3.6 describes.

Steps, each through :meth:`FalClient._send` (its timeouts, deadline and retry policy):

1. Token: ``POST {FAL_REST_BASE_URL}/storage/auth/token?storage_type=fal-cdn-v3`` with the
   API key; the answer ``{token, token_type, base_url, expires_at}`` is cached until shortly
   before ``expires_at``, and only one token call runs at a time (per event loop).
2. Up to 100 MiB: one ``POST {FAL_CDN_BASE_URL}/files/upload`` carrying the bytes.
3. Above that, multipart: ``POST {base_url}/files/upload/multipart`` answers
   ``{access_url, uploadId}``; every 10 MiB part is ``PUT {access_url}/multipart/{uploadId}/{n}``
   (at most FAL_UPLOAD_CONCURRENCY in flight, each read from disk when its turn comes, each
   retried on its own on 5xx, 429 or a dropped connection), then
   ``POST {access_url}/multipart/{uploadId}/complete`` with every part's ETag.

CDN calls carry ``Authorization: <token_type> <token>``, never the API key; both the key and
the token are scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict

from tools.fal import errors as E
from tools.fal import files as F
from tools.fal.mapping import parse_json

if TYPE_CHECKING:  # pragma: no cover
    from tools.fal.client import FalClient

__all__ = ["TOKEN_PATH", "STORAGE_TYPE", "Source", "UploadedFile", "CdnToken", "parse_token", "Uploader"]


TOKEN_PATH = "/storage/auth/token"
STORAGE_TYPE = "fal-cdn-v3"
# A part PUT repeats harmlessly (same bytes, same part number), so a 500 is retried as well.
_PART_RETRY_ALSO = frozenset({500})
_TOKEN_MARGIN_S = 30.0
Source = str | os.PathLike[str] | bytes | bytearray | memoryview
"""What `upload` takes: a local path, or the bytes themselves."""


class UploadedFile(BaseModel):
    """A file now on fal's CDN: the URL to put into a model's arguments, and what was sent."""

    model_config = ConfigDict(frozen=True)

    url: str
    """The file's CDN URL (``access_url``)."""
    file_name: str
    size: int
    """Bytes sent."""
    content_type: str
    multipart: bool
    parts: int
    """1 for a single-request upload."""
    expires_in_s: int | None = None
    """Lifetime asked for (None: never, or fal's default when no lifecycle was given)."""


@dataclass(frozen=True, slots=True)
class CdnToken:
    """A storage token; ``expires_at`` in epoch seconds."""

    token: str
    token_type: str
    base_url: str
    expires_at: float
    fetched_at: float

    @property
    def header(self) -> str:
        """The Authorization value for CDN calls."""
        return f"{self.token_type} {self.token}"

    def usable(self, now: float) -> bool:
        """True until shortly before expiry (a quarter of its life for short-lived tokens)."""
        margin = min(_TOKEN_MARGIN_S, max(0.0, self.expires_at - self.fetched_at) / 4)
        return now < self.expires_at - margin


def parse_token(content: bytes, now: float) -> CdnToken:
    """Read the token answer; InvalidResponseError when a field is missing or malformed."""
    body = parse_json(content)
    if not isinstance(body, dict):
        raise E.InvalidResponseError("fal.ai storage token answer was not a JSON object")
    token, kind = body.get("token"), body.get("token_type")
    base = body.get("base_url") or body.get("base_upload_url")
    if not isinstance(token, str) or not token or not isinstance(kind, str) or not kind:
        raise E.InvalidResponseError("fal.ai storage token answer lacks token/token_type")
    return CdnToken(token=token, token_type=kind, base_url=_http_url(base, "base_url"),
                    expires_at=_epoch(body.get("expires_at"), now), fetched_at=now)


def _epoch(value: Any, now: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return when.timestamp()
    if value is None:
        return now + 60.0  # no expiry given: use it briefly, then ask again
    raise E.InvalidResponseError(f"fal.ai storage token has an unreadable expires_at "
                                 f"({str(value)[:40]!r})")


def _http_url(value: Any, field: str) -> str:
    try:
        url = httpx.URL(value) if isinstance(value, str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise E.InvalidResponseError(f"fal.ai upload answer has no usable {field} URL")
    assert isinstance(value, str)
    return value.strip().rstrip("/")  # as fal gave it (httpx would re-encode it)


def _field(resp: httpx.Response, name: str) -> Any:
    body = parse_json(resp.content)
    return body.get(name) if isinstance(body, dict) else None


def _in_step(exc: E.FalError, step: str) -> E.FalError:
    exc.message = f"{step}: {exc.message}"
    exc.args = (exc.message,)
    return exc


class Uploader:
    """Runs uploads for one :class:`FalClient` and holds its cached storage token."""

    def __init__(self, client: FalClient, *, clock: Callable[[], float] = time.time,
                 multipart_threshold: int = F.MULTIPART_THRESHOLD,
                 part_size: int = F.PART_SIZE) -> None:
        if part_size < 1 or multipart_threshold < 0:
            raise ValueError("part_size must be >= 1 and multipart_threshold >= 0")
        self.multipart_threshold = multipart_threshold
        """Payloads larger than this go up in parts (fal's 100 MiB; smaller in tests)."""
        self.part_size = part_size
        """Bytes per part (fal's 10 MiB)."""
        self._fal = client
        self._clock = clock
        self._token: CdnToken | None = None
        self._guard = threading.Lock()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary())
        self.token_calls = 0
        """How many token calls were made (for tests and diagnostics)."""

    def _budget(self, nbytes: int) -> float:
        c = self._fal.config
        return c.deadline_s + nbytes / c.upload_min_rate_bps

    async def token(self, *, stale: CdnToken | None = None) -> CdnToken:
        """The cached token, or a new one when it is near expiry or is `stale` (refused by
        the CDN); only one token call runs at a time."""
        def good(t: CdnToken | None) -> bool:
            return t is not None and t is not stale and t.usable(self._clock())

        if good(self._token):
            assert self._token is not None
            return self._token
        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if good(self._token):  # another task refreshed it while this one waited
                assert self._token is not None
                return self._token
            self.token_calls += 1
            url = self._fal.config.rest_base_url.rstrip("/") + TOKEN_PATH
            try:
                resp = await self._fal._send(
                    "POST", url, params={"storage_type": STORAGE_TYPE}, content=b"{}",
                    headers={"Content-Type": "application/json", "Accept": "application/json"})
                token = parse_token(resp.content, self._clock())
            except E.FalError as exc:
                raise _in_step(exc, "getting an upload token from fal.ai") from exc.__cause__
            self._fal._remember_secret(token.token)
            self._token = token
            return token

    async def _cdn(self, method: str, url: str, *, step: str, content: bytes | None = None,
                   headers: dict[str, str] | None = None, nbytes: int = 0,
                   retry_also: frozenset[int] = frozenset()) -> httpx.Response:
        """One CDN call with the token; a 401 gets one retry with a fresh token."""
        stale: CdnToken | None = None
        while True:
            token = await self.token(stale=stale)
            try:
                return await self._fal._send(
                    method, url, content=content,
                    headers={**(headers or {}), "Authorization": token.header},
                    deadline_s=self._budget(nbytes), retry_also=retry_also)
            except E.AuthError as exc:
                if stale is None and type(exc) is E.AuthError:
                    stale = token  # revoked or expired early: one more try with a new one
                    continue
                raise _in_step(exc, step) from exc.__cause__
            except E.FalError as exc:
                raise _in_step(exc, step) from exc.__cause__

    async def upload(self, source: Source, *, file_name: str | None = None,
                     content_type: str | None = None,
                     lifecycle: F.Lifecycle | None = None) -> UploadedFile:
        """Upload a local file (path) or bytes; the answer carries the CDN URL."""
        limit = self._fal.config.upload_max_bytes
        expires = F.lifecycle_seconds(lifecycle)
        if isinstance(source, (bytes, bytearray, memoryview)):
            blob = bytes(source)
            data: bytes | None = blob
            name = file_name or "upload.bin"
            F.check_size(len(blob), limit, f"the {name} payload")
            local = None
            size = len(blob)
        else:
            local = await asyncio.to_thread(F.check_file, source, limit)
            data, name, size = None, file_name or local.name, local.size
        mime = F.content_type_for(name, content_type)
        headers = {"Content-Type": mime, "X-Fal-File-Name": F.header_file_name(name)}
        value = F.lifecycle_header(lifecycle)
        if value is not None:
            headers["X-Fal-Object-Lifecycle"] = value
            headers["X-Fal-Object-Lifecycle-Preference"] = value
        multipart = size > self.multipart_threshold
        if multipart:
            url, parts = await self._multipart(local, data, name, size, headers)
        else:
            if data is None:
                assert local is not None
                data = await asyncio.to_thread(F.read_part, local.path, 0, size)
            url, parts = await self._single(data, name, headers), 1
        return UploadedFile(url=url, file_name=name, size=size, content_type=mime,
                            multipart=multipart, parts=parts, expires_in_s=expires)

    async def _single(self, data: bytes, name: str, headers: dict[str, str]) -> str:
        url = self._fal.config.cdn_base_url.rstrip("/") + "/files/upload"
        step = f"uploading {name}"
        resp = await self._cdn("POST", url, step=step, content=data, headers=headers,
                               nbytes=len(data))
        return self._url_in(resp, step)

    def _url_in(self, resp: httpx.Response, step: str) -> str:
        try:
            return _http_url(_field(resp, "access_url"), "access_url")
        except E.InvalidResponseError as exc:
            raise _in_step(exc, step) from None

    async def _multipart(self, local: F.LocalFile | None, data: bytes | None, name: str,
                         size: int, headers: dict[str, str]) -> tuple[str, int]:
        token = await self.token()
        step = f"starting the multipart upload of {name}"
        resp = await self._cdn("POST", token.base_url + "/files/upload/multipart", step=step,
                               headers={**headers, "Accept": "application/json"})
        access = self._url_in(resp, step)
        upload_id = _field(resp, "uploadId")
        if not isinstance(upload_id, str) or not upload_id or "/" in upload_id:
            raise E.InvalidResponseError(f"{step}: fal.ai answered without a usable uploadId")
        total = F.part_count(size, self.part_size)
        etags: dict[int, str] = {}
        numbers = iter(range(1, total + 1))
        part_headers = {"Content-Type": headers["Content-Type"], "Accept-Encoding": "identity"}

        async def worker() -> None:
            for n in numbers:  # one shared iterator: each part is taken by one worker
                offset, length = F.part_span(n, size, self.part_size)
                if local is not None:
                    chunk = await asyncio.to_thread(F.read_part, local.path, offset, length)
                else:
                    assert data is not None
                    chunk = data[offset:offset + length]
                where = f"uploading part {n}/{total} of {name}"
                resp = await self._cdn("PUT", f"{access}/multipart/{upload_id}/{n}", step=where,
                                       content=chunk, headers=part_headers, nbytes=length,
                                       retry_also=_PART_RETRY_ALSO)
                etag = resp.headers.get("etag")
                if not etag:
                    raise E.InvalidResponseError(f"{where}: fal.ai answered without an ETag")
                etags[n] = etag

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(self._fal.config.upload_concurrency, total)):
                    tg.create_task(worker())
        except BaseExceptionGroup as group:
            raise _first_leaf(group)  # noqa: B904 (keeps the part's own cause)
        body = json.dumps({"parts": [{"partNumber": n, "etag": etags[n]}
                                     for n in range(1, total + 1)]})
        step = f"completing the multipart upload of {name}"
        resp = await self._cdn("POST", f"{access}/multipart/{upload_id}/complete", step=step,
                               content=body.encode(), headers={"Content-Type": "application/json"})
        final = _field(resp, "access_url") if resp.content else None
        return (_http_url(final, "access_url") if final else access), total


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    """The first real failure in a task group (not the cancellations it caused)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]
