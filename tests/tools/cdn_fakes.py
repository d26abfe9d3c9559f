"""An in-process fal storage emulation (token, single and multipart uploads; fal-api.md 3.6).

Async handler for ``httpx.MockTransport``: counts every request, the parts in flight at
once, and can fail chosen parts (an HTTP status or a dropped connection) a set number of
times before they succeed. ``FakeCdn.router(other)`` sends every other host to `other`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fal_fakes import KEY

REST = "http://rest.test"
CDN = "http://cdn.test"
_PART = re.compile(r"^/files/(?P<fid>[^/]+)/(?P<name>[^/]+)/multipart/(?P<uid>[^/]+)/(?P<n>\d+)$")
_DONE = re.compile(r"^/files/(?P<fid>[^/]+)/(?P<name>[^/]+)/multipart/(?P<uid>[^/]+)/complete$")


@dataclass
class Upload:
    """One multipart upload being assembled."""

    access_url: str
    headers: dict[str, str]
    parts: dict[int, bytes] = field(default_factory=dict)
    completed: bytes | None = None


@dataclass
class FakeCdn:
    """Token, upload and multipart routes; `fail` maps a part number to answers to give first
    (an int status, or 'drop' for a dropped connection)."""

    token_ttl_s: float = 3600.0
    clock: Callable[[], float] = time.time
    fail: dict[int, list[int | str]] = field(default_factory=dict)
    fail_token: list[int] = field(default_factory=list)
    barrier: int = 0
    """Hold each part until this many are in flight (or all that remain), to see the bound."""
    seen: list[httpx.Request] = field(default_factory=list)
    files: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    part_attempts: dict[int, int] = field(default_factory=dict)
    inflight: int = 0
    max_inflight: int = 0

    def __post_init__(self) -> None:
        self._gate: asyncio.Event | None = None

    def config(self, **extra: Any) -> dict[str, Any]:
        """FalConfig values pointing at this fake."""
        return {"FAL_REST_BASE_URL": REST, "FAL_CDN_BASE_URL": CDN, **extra}

    def router(self, other: Callable[[httpx.Request], httpx.Response] | None = None
               ) -> httpx.MockTransport:
        async def route(request: httpx.Request) -> httpx.Response:
            if request.url.host in ("rest.test", "cdn.test"):
                return await self.handle(request)
            if other is None:
                return httpx.Response(404, json={"detail": "no such host"})
            return other(request)

        return httpx.MockTransport(route)

    def _auth_ok(self, request: httpx.Request) -> bool:
        return bool(self.tokens) and request.headers.get("authorization") == (
            f"Bearer {self.tokens[-1]}")

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path, method = request.url.path, request.method
        if request.url.host == "rest.test":
            if method == "POST" and path == "/storage/auth/token":
                return self._token(request)
            return httpx.Response(404, json={"detail": "Not Found"})
        if not self._auth_ok(request):
            return httpx.Response(401, json={"detail": "Invalid token"})
        if method == "POST" and path == "/files/upload":
            return self._single(request)
        if method == "POST" and path == "/files/upload/multipart":
            return self._start(request)
        if method == "PUT" and (m := _PART.match(path)):
            return await self._part(request, m.group("uid"), int(m.group("n")))
        if method == "POST" and (m := _DONE.match(path)):
            return self._complete(request, m.group("uid"))
        return httpx.Response(404, json={"detail": "Not Found"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Key {KEY}":
            return httpx.Response(401, json={"detail": "No user found for Key ID and Secret"})
        if request.url.params.get("storage_type") != "fal-cdn-v3":
            return httpx.Response(400, json={"detail": "storage_type"})
        if self.fail_token:
            return httpx.Response(self.fail_token.pop(0), json={"detail": "token trouble"})
        token = f"cdn-token-{len(self.tokens) + 1}-very-secret"
        self.tokens.append(token)
        expires = datetime.fromtimestamp(self.clock() + self.token_ttl_s, UTC)
        return httpx.Response(200, json={"token": token, "token_type": "Bearer",
                                         "base_url": CDN, "expires_at": expires.isoformat()})

    def _url(self, request: httpx.Request) -> str:
        name = request.headers.get("x-fal-file-name", "file")
        fid = hashlib.sha1(f"{len(self.files) + len(self.uploads)}".encode()).hexdigest()[:12]
        return f"{CDN}/files/{fid}/{name}"

    def _single(self, request: httpx.Request) -> httpx.Response:
        url = self._url(request)
        self.files[url] = (request.content, dict(request.headers))
        return httpx.Response(200, json={"access_url": url})

    def _start(self, request: httpx.Request) -> httpx.Response:
        url = self._url(request)
        uid = f"up{len(self.uploads) + 1}"
        self.uploads[uid] = Upload(url, dict(request.headers))
        return httpx.Response(200, json={"access_url": url, "uploadId": uid})

    async def _part(self, request: httpx.Request, uid: str, n: int) -> httpx.Response:
        upload = self.uploads.get(uid)
        if upload is None:
            return httpx.Response(404, json={"detail": "unknown upload"})
        self.part_attempts[n] = self.part_attempts.get(n, 0) + 1
        plan = self.fail.get(n)
        if plan:
            what = plan.pop(0)
            if what == "drop":
                raise httpx.RemoteProtocolError("peer closed connection", request=request)
            return httpx.Response(int(what), json={"detail": "part failed"})
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.barrier:
                if self._gate is None:
                    self._gate = asyncio.Event()
                if self.inflight >= self.barrier:
                    self._gate.set()
                await asyncio.wait_for(self._gate.wait(), 5)
            await asyncio.sleep(0)
        finally:
            self.inflight -= 1
        upload.parts[n] = request.content
        etag = '"' + hashlib.md5(request.content).hexdigest() + '"'
        return httpx.Response(200, headers={"ETag": etag})

    def _complete(self, request: httpx.Request, uid: str) -> httpx.Response:
        upload = self.uploads.get(uid)
        if upload is None:
            return httpx.Response(404, json={"detail": "unknown upload"})
        parts = json.loads(request.content)["parts"]
        numbers = [p["partNumber"] for p in parts]
        if numbers != list(range(1, len(upload.parts) + 1)):
            return httpx.Response(400, json={"detail": f"parts {numbers}"})
        for p in parts:
            want = '"' + hashlib.md5(upload.parts[p["partNumber"]]).hexdigest() + '"'
            if p["etag"] != want:
                return httpx.Response(400, json={"detail": "etag mismatch"})
        upload.completed = b"".join(upload.parts[n] for n in numbers)
        self.files[upload.access_url] = (upload.completed, upload.headers)
        return httpx.Response(200, json={"access_url": upload.access_url})
