"""fal's file upload (§3.6), emulated: the REST token and storage calls, and the v3 CDN.

fal_client hard-codes `REST_URL` and `CDN_URL`; point both module constants at the sandbox
(`fal_client.client.REST_URL = CDN_URL = "https://127.0.0.1:PORT"`) and its `upload`,
`upload_file` and `upload_image` work unchanged. One listener serves all of it:

- `POST /storage/auth/token?storage_type=fal-cdn-v3` (`Authorization: Key id:secret`, body `{}`)
  answers `{token, token_type: "Bearer", base_url, expires_at}`; the token lives
  `upload_token_ttl_s` sandbox seconds;
- `POST /files/upload` (`Authorization: Bearer <token>`, `Content-Type`, `X-Fal-File-Name`, the raw
  bytes) answers `{"access_url": ".../files/sandbox/<id>/<name>"}`;
- multipart: `POST /files/upload/multipart` (same headers, no body) answers `{access_url, uploadId}`;
  `PUT {access_url}/multipart/{uploadId}/{n}` stores part n (1-10000) and answers with its `ETag`
  (quoted MD5); `POST {access_url}/multipart/{uploadId}/complete` with
  `{"parts": [{"partNumber", "etag"}]}` joins the listed parts in order and answers `{access_url}`
  (again: idempotent);
- storage fallback: `POST /storage/upload/initiate?storage_type=gcs` (Key auth, `{file_name,
  content_type}`) answers `{upload_url, file_url}`; `PUT upload_url` (no auth: the URL carries a
  secret, like a signed URL) stores the bytes;
- `GET|HEAD {access_url}` serves a complete file with its content type (no auth, like the CDN).

`X-Fal-Object-Lifecycle` (CDN) / `X-Fal-Object-Lifecycle-Preference` (storage) is recorded; its
`expiration_duration_seconds` makes the file answer 404 once that much sandbox time has passed.
Errors use the `{"detail", "error_type"}` shape: 401 for a missing, unknown or expired token (or
no key on the REST calls), 400 for bad parts, 404, 413 past `upload_max_bytes`, 507 when the
store is full. Faults: ops `upload_token`, `upload` (small upload, multipart create, storage
initiate and PUT), `upload_part`, `upload_complete`. Counters are at `GET /_sandbox/uploads`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from sandbox.http import (
    BodyTooLarge,
    apply_faults,
    caller_or_error,
    json_response,
    maybe_malformed,
    queue_error,
    read_body,
    state_of,
)
from sandbox.uploads import StoredFile, UploadError, iso_utc, parse_lifecycle

_MAX_PART_NUMBER = 10000


def _error(exc: UploadError) -> Response:
    return queue_error(exc.status, exc.message, exc.kind)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _declared_too_big(request: Request, limit: int) -> bool:
    declared = request.headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > limit


async def _json(request: Request) -> dict[str, Any]:
    try:
        raw = await read_body(request, 1024 * 1024)
    except BodyTooLarge:
        raise UploadError(413, "JSON body too large", "payload_too_large") from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise UploadError(422, "Body is not valid JSON", "validation_error") from None
    if not isinstance(body, dict):
        raise UploadError(422, "Body must be a JSON object", "validation_error")
    return body


def _storage_type(request: Request, wanted: str) -> None:
    given = request.query_params.get("storage_type")
    if given != wanted:
        raise UploadError(400, f"Unsupported storage_type {given!r} here; use storage_type={wanted}",
                          "bad_request")


async def _keyed_caller(request: Request, fault_op: str) -> str | Response:
    """The caller's key id; or the answer refusing a caller without a valid `Key` (or an
    injected fault)."""
    caller = caller_or_error(request, platform=False)
    if isinstance(caller, Response):
        return caller
    if caller.key_id is None:
        return queue_error(401, "Authentication required: send Authorization: Key <key_id>:<key_secret>",
                           "authorization_error")
    fault = await apply_faults(state_of(request), fault_op, None)
    return fault if fault is not None else caller.key_id


async def token(request: Request) -> Response:
    """POST /storage/auth/token: a CDN upload token for a keyed caller."""
    state = state_of(request)
    key_id = await _keyed_caller(request, "upload_token")
    if isinstance(key_id, Response):
        return key_id
    try:
        _storage_type(request, "fal-cdn-v3")
        await _json(request)
    except UploadError as exc:
        return _error(exc)
    value, expires = state.uploads.issue_token(key_id, state.clock.now())
    reply = json_response({"token": value, "token_type": "Bearer", "base_url": _base(request),
                           "expires_at": iso_utc(expires)})
    return maybe_malformed(state, "upload_token", None, reply)


async def _receive_file(request: Request, entry: StoredFile) -> None:
    state = state_of(request)
    store = state.uploads
    if _declared_too_big(request, store.max_file_bytes):
        raise UploadError(413, f"File exceeds {store.max_file_bytes} bytes", "payload_too_large")
    entry.size, _ = await store.write_stream(request.stream(), entry.path, store.max_file_bytes)
    entry.complete = True


async def _bearer_refused(request: Request) -> Response | None:
    """The answer refusing an upload without a valid token (or an injected fault), else None."""
    state = state_of(request)
    try:
        state.uploads.check_token(request.headers.get("authorization"), state.clock.now())
    except UploadError as exc:
        return _error(exc)
    return await apply_faults(state, "upload", None)


def _new_entry(request: Request, via: str) -> StoredFile:
    """A new stored file named and typed by the upload's headers (`X-Fal-File-Name`,
    `Content-Type`, `X-Fal-Object-Lifecycle`)."""
    state = state_of(request)
    return state.uploads.create(base_url=_base(request), file_name=request.headers.get("x-fal-file-name"),
                                content_type=request.headers.get("content-type"), via=via,
                                now=state.clock.now(),
                                lifecycle=parse_lifecycle(request.headers.get("x-fal-object-lifecycle")))


async def small_upload(request: Request) -> Response:
    """POST /files/upload: the whole file in one body."""
    state = state_of(request)
    refused = await _bearer_refused(request)
    if refused is not None:
        return refused
    entry = None
    try:
        entry = _new_entry(request, "cdn")
        await _receive_file(request, entry)
    except UploadError as exc:
        if entry is not None:
            state.uploads.delete(entry.file_id)
        return _error(exc)
    return maybe_malformed(state, "upload", None, json_response({"access_url": entry.access_url}))


async def multipart_create(request: Request) -> Response:
    """POST /files/upload/multipart: start a multipart upload."""
    state = state_of(request)
    refused = await _bearer_refused(request)
    if refused is not None:
        return refused
    try:
        entry = _new_entry(request, "multipart")
    except UploadError as exc:
        return _error(exc)
    upload_id = state.uploads.start_multipart(entry)
    reply = json_response({"access_url": entry.access_url, "uploadId": upload_id})
    return maybe_malformed(state, "upload", None, reply)


def _part_number(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PART_NUMBER:
        raise UploadError(400, f"Part number must be an integer from 1 to {_MAX_PART_NUMBER}", "bad_request")
    return int(raw)


async def multipart_part(request: Request, file_id: str, upload_id: str, raw_number: str) -> Response:
    """PUT {access_url}/multipart/{uploadId}/{n}: one part; answers its ETag."""
    state = state_of(request)
    store = state.uploads
    try:
        store.check_token(request.headers.get("authorization"), state.clock.now())
        number = _part_number(raw_number)
    except UploadError as exc:
        return _error(exc)
    entry = store.multipart(file_id, upload_id, state.clock.now())
    if entry is None:
        return queue_error(404, f"Multipart upload {upload_id} not found", "not_found")
    if entry.complete:
        return queue_error(409, "Multipart upload already completed", "already_completed")
    fault = await apply_faults(state, "upload_part", None)
    if fault is not None:
        return fault
    path = store.new_path(f".part{number}")
    try:
        if _declared_too_big(request, store.max_file_bytes):
            raise UploadError(413, f"Part exceeds {store.max_file_bytes} bytes", "payload_too_large")
        size, md5 = await store.write_stream(request.stream(), path, store.max_file_bytes)
    except UploadError as exc:
        return _error(exc)
    etag = f'"{md5}"'
    store.add_part(entry, number, size, etag, path)
    return Response(b"", status_code=200, headers={"ETag": etag})


async def multipart_complete(request: Request, file_id: str, upload_id: str) -> Response:
    """POST {access_url}/multipart/{uploadId}/complete: join the listed parts."""
    state = state_of(request)
    store = state.uploads
    try:
        store.check_token(request.headers.get("authorization"), state.clock.now())
    except UploadError as exc:
        return _error(exc)
    entry = store.multipart(file_id, upload_id, state.clock.now())
    if entry is None:
        done = store.get(file_id, state.clock.now())
        if done is not None and done.complete and done.upload_id == upload_id:
            return json_response({"access_url": done.access_url})  # a repeated complete
        return queue_error(404, f"Multipart upload {upload_id} not found", "not_found")
    fault = await apply_faults(state, "upload_complete", None)
    if fault is not None:
        return fault
    try:
        numbers = _listed_parts(await _json(request), entry)
        await asyncio.to_thread(store.assemble, entry, numbers)
    except UploadError as exc:
        return _error(exc)
    return maybe_malformed(state, "upload_complete", None, json_response({"access_url": entry.access_url}))


def _listed_parts(body: dict[str, Any], entry: StoredFile) -> list[int]:
    parts = body.get("parts")
    if not isinstance(parts, list) or not parts:
        raise UploadError(400, "'parts' must be a non-empty list of {partNumber, etag}", "bad_request")
    seen: dict[int, str] = {}
    for item in parts:
        number = item.get("partNumber") if isinstance(item, dict) else None
        etag = item.get("etag") if isinstance(item, dict) else None
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str):
            raise UploadError(400, "each part needs an integer partNumber and a string etag", "bad_request")
        if number in seen:
            raise UploadError(400, f"part {number} is listed twice", "bad_request")
        got = entry.parts.get(number)
        if got is None:
            raise UploadError(400, f"part {number} was not uploaded", "bad_request")
        if got.etag.strip('"') != etag.strip('"'):
            raise UploadError(400, f"part {number}: etag does not match the uploaded part", "bad_request")
        seen[number] = etag
    return sorted(seen)


async def storage_initiate(request: Request) -> Response:
    """POST /storage/upload/initiate?storage_type=gcs: a PUT URL and the file's URL."""
    state = state_of(request)
    key_id = await _keyed_caller(request, "upload")
    if isinstance(key_id, Response):
        return key_id
    try:
        _storage_type(request, "gcs")
        body = await _json(request)
        name, kind = body.get("file_name"), body.get("content_type")
        if not isinstance(name, str) or not isinstance(kind, str):
            raise UploadError(422, "file_name and content_type are required strings", "validation_error")
        lifecycle = parse_lifecycle(request.headers.get("x-fal-object-lifecycle-preference"))
    except UploadError as exc:
        return _error(exc)
    entry = state.uploads.create(base_url=_base(request), file_name=name, content_type=kind, via="storage",
                                 now=state.clock.now(), lifecycle=lifecycle)
    entry.put_secret = secrets.token_urlsafe(16)
    upload_url = f"{_base(request)}/storage/upload/put/{entry.file_id}?signature={entry.put_secret}"
    return maybe_malformed(state, "upload", None,
                           json_response({"upload_url": upload_url, "file_url": entry.access_url}))


async def storage_put(request: Request) -> Response:
    """PUT /storage/upload/put/{file_id}?signature=...: the bytes of an initiated upload."""
    state = state_of(request)
    entry = state.uploads.get(request.path_params["file_id"], state.clock.now())
    signature = request.query_params.get("signature")
    if entry is None or entry.via != "storage" or not signature or signature != entry.put_secret:
        return queue_error(403, "Invalid or unknown signed upload URL", "authorization_error")
    fault = await apply_faults(state, "upload", None)
    if fault is not None:
        return fault
    try:
        if entry.complete:
            state.uploads.release(entry.size)
        await _receive_file(request, entry)
    except UploadError as exc:
        entry.complete = False
        return _error(exc)
    return Response(b"", status_code=200)


async def files_entry(request: Request) -> Response:
    """Every `/files/...` URL: uploads, multipart steps and downloads."""
    segs = [s for s in request.path_params.get("rest", "").split("/") if s]
    method = request.method
    if segs == ["upload"] and method == "POST":
        return await small_upload(request)
    if segs == ["upload", "multipart"] and method == "POST":
        return await multipart_create(request)
    if len(segs) >= 3 and segs[0] == "sandbox":
        file_id, tail = segs[1], segs[3:]
        if len(tail) == 3 and tail[0] == "multipart" and method == "PUT":
            return await multipart_part(request, file_id, tail[1], tail[2])
        if len(tail) == 3 and tail[0] == "multipart" and tail[2] == "complete" and method == "POST":
            return await multipart_complete(request, file_id, tail[1])
        if not tail and method in ("GET", "HEAD"):
            return download(request, file_id, segs[2])
    return queue_error(404 if method in ("GET", "HEAD") else 405,
                       f"No upload route for {method} {request.url.path}", "not_found")


def download(request: Request, file_id: str, name: str) -> Response:
    """A complete uploaded file, with the content type it was uploaded with."""
    state = state_of(request)
    entry = state.uploads.get(file_id, state.clock.now())
    if entry is None or not entry.complete or entry.file_name != name or not entry.path.exists():
        return queue_error(404, f"File {request.url.path} not found", "not_found")
    return FileResponse(entry.path, media_type=entry.content_type,
                        headers={"Cache-Control": "max-age=86400"})


ROUTES = [
    Route("/storage/auth/token", token, methods=["POST"]),
    Route("/storage/upload/initiate", storage_initiate, methods=["POST"]),
    Route("/storage/upload/put/{file_id}", storage_put, methods=["PUT"]),
    Route("/files/{rest:path}", files_entry, methods=["GET", "HEAD", "POST", "PUT"]),
]
