"""The async fal.ai client: queue API, platform API v1 and the webhook JWKS.

One pooled ``httpx.AsyncClient`` per running event loop (httpx connections belong to the
loop that opened them), created on first use, so one ``FalClient`` can serve an async agent
and sync tool calls made from worker threads. Every call carries an explicit
``httpx.Timeout`` and runs under a total deadline; retries follow :mod:`tools.fal.retry`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pydantic

from tools.fal import errors as E
from tools.fal import validate as V
from tools.fal.config import FalConfig
from tools.fal.files import Lifecycle
from tools.fal.mapping import (
    error_from_response,
    parse_json,
    parse_model,
    scrub,
    scrub_obj,
)
from tools.fal.models import (
    CancelOutcome,
    CancelResult,
    EstimateResponse,
    Jwks,
    ModelsPage,
    PricingResponse,
    QueueStatus,
    SubmitResponse,
)
from tools.fal.retry import NOT_SENT, next_delay, parse_retry_after, retry_exception, retry_status
from tools.fal.sse import stream_statuses
from tools.fal.upload import Source, UploadedFile, Uploader
from tools.fal.urls import parse_endpoint_id, request_url, submit_url

if TYPE_CHECKING:  # pragma: no cover
    from tools.fal.inputschema import InputSchema, SchemaCache, SchemaUnavailable

__all__ = ["FalClient"]


log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=pydantic.BaseModel)

_LOGS_ON = {"logs": "1"}
_NO_RETRY_ON_RESULT = frozenset({401, 403, 404, 408, 409, 429, 502, 503, 504})
# A result call answering with any other error status is the request's own failure replayed.
_RESULT_FAILED = frozenset(range(400, 600)) - _NO_RETRY_ON_RESULT


class FalClient:
    """Async client for fal.ai (see docs/contracts.md for the method list).

    ``transport`` replaces the network (``httpx.MockTransport`` / ``ASGITransport`` in tests)
    and is shared by the per-loop clients. Use as ``async with FalClient() as fal:`` or call
    ``await fal.aclose()``. The key is sent as ``Authorization: Key ...`` and appears in no
    message, log or repr.
    """

    def __init__(self, config: FalConfig | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config if config is not None else FalConfig()
        self._transport = transport
        self._queue = self.config.queue_base_url.rstrip("/")
        self._api = self.config.api_base_url.rstrip("/")
        key = self.config.key.get_secret_value() if self.config.key is not None else ""
        self._secrets: tuple[str, ...] = (key,) if key else ()
        self._base_secrets = self._secrets
        self._extra_secrets: tuple[str, ...] = ()
        self._uploader: Uploader | None = None
        self._schemas: SchemaCache | None = None
        self._default_headers = {"Authorization": f"Key {key}"} if key else {}
        c = self.config
        self._timeout = httpx.Timeout(connect=c.connect_timeout_s, read=c.read_timeout_s,
                                      write=c.read_timeout_s, pool=c.connect_timeout_s)
        self._lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._current: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def _remember_secret(self, secret: str) -> None:
        """Scrub `secret` (an upload token) from errors too; the last few are kept."""
        with self._lock:
            if secret and secret not in self._extra_secrets:
                self._extra_secrets = (self._extra_secrets + (secret,))[-4:]
                self._secrets = self._base_secrets + self._extra_secrets

    def __repr__(self) -> str:
        return (f"FalClient(queue={self._queue!r}, api={self._api!r}, "
                f"key={'set' if self._secrets else 'unset'})")

    async def __aenter__(self) -> FalClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections (this loop's now; other live loops' when they can)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            clients = list(self._clients.items())
            self._clients.clear()
            self._current = None
        for owner, http in clients:
            if owner is loop:
                await http.aclose()
            elif owner.is_running() and not owner.is_closed():
                asyncio.run_coroutine_threadsafe(http.aclose(), owner)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        cur = self._current
        if cur is not None and cur[0] is loop:
            return cur[1]
        with self._lock:
            http = self._clients.get(loop)
            if http is None or http.is_closed:
                http = httpx.AsyncClient(headers=self._default_headers, timeout=self._timeout,
                                         transport=self._transport)
                self._clients[loop] = http
            self._current = (loop, http)
        return http

    # -- the one request loop ---------------------------------------------------------------

    async def _send(self, method: str, url: str, *, params: Any = None, content: Any = None,
                    headers: dict[str, str] | None = None, submit: bool = False,
                    accept: frozenset[int] = frozenset(), auth: bool = True,
                    deadline_s: float | None = None, about: str | None = None,
                    retry_also: frozenset[int] = frozenset()) -> httpx.Response:
        """One call with retries. `about`: the request id asked about, which every error names
        (an error response's own `x-fal-request-id` can be another id). `retry_also`: more
        statuses to retry, for calls safe to repeat on them (an upload part on a 500)."""
        try:
            return await self._send_once(method, url, params=params, content=content,
                                         headers=headers, submit=submit, accept=accept, auth=auth,
                                         deadline_s=deadline_s, retry_also=retry_also)
        except E.FalError as exc:
            if about:
                exc.request_id = about
            raise

    async def _send_once(self, method: str, url: str, *, params: Any, content: Any,
                         headers: dict[str, str] | None, submit: bool, accept: frozenset[int],
                         auth: bool, deadline_s: float | None,
                         retry_also: frozenset[int] = frozenset()) -> httpx.Response:
        http = self._http()
        loop = asyncio.get_running_loop()
        budget = self.config.deadline_s if deadline_s is None else deadline_s
        end = loop.time() + budget
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with asyncio.timeout_at(end):
                    if auth:
                        resp = await http.request(method, url, params=params, content=content,
                                                  headers=headers, timeout=self._timeout)
                    else:
                        req = http.build_request(method, url, params=params,
                                                 timeout=self._timeout)
                        req.headers.pop("Authorization", None)
                        resp = await http.send(req)
            except TimeoutError as exc:
                raise E.FalTimeoutError(f"no answer from fal.ai within {budget:g}s "
                                        f"({method} {_short(url)})") from exc
            except httpx.TransportError as exc:
                err: E.FalError = self._transport_error(exc, url)
                cause: BaseException = exc
                if not retry_exception(exc, submit=submit):
                    raise err from exc
            else:
                code = resp.status_code
                if code < 400 or code in accept:
                    return resp
                err = error_from_response(code, resp.headers, resp.content, secrets=self._secrets)
                cause = httpx.HTTPStatusError(err.message, request=resp.request, response=resp)
                if not (retry_status(code, resp.headers, submit=submit) or code in retry_also):
                    raise err from cause
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
            delay = next_delay(attempt, end - loop.time(), retry_after_s=retry_after,
                               max_retries=self.config.max_retries)
            if delay is None:
                raise err from cause
            attempt += 1
            log.info("%s %s: %s; retry %d in %.2f s", method, _short(url), err.message, attempt, delay)
            await asyncio.sleep(delay)

    def _transport_error(self, exc: httpx.TransportError, url: str) -> E.FalError:
        text = scrub(str(exc), self._secrets)[:200]
        where = _short(url)
        if isinstance(exc, httpx.TimeoutException):
            return E.FalTimeoutError(f"fal.ai did not answer in time ({type(exc).__name__} "
                                     f"on {where})")
        return E.TransportError(f"could not talk to fal.ai ({type(exc).__name__} on {where}"
                                + (f": {text})" if text else ")"))

    @staticmethod
    def _model(cls: type[_M], resp: httpx.Response) -> _M:
        try:
            return cls.model_validate_json(resp.content)
        except pydantic.ValidationError:
            return parse_model(cls, resp.content, request_id=resp.headers.get("x-fal-request-id"))

    # -- queue API ----------------------------------------------------------------------------

    async def submit(self, endpoint_id: str, arguments: dict[str, Any], *,
                     webhook_url: str | None = None, priority: str = "normal",
                     start_timeout_s: float | None = None) -> SubmitResponse:
        """Queue a request (spends money); never retried unless fal provably did not get it."""
        url = submit_url(self._queue, endpoint_id)
        body = V.json_body(arguments)
        headers = {"Content-Type": "application/json",
                   "X-Fal-Queue-Priority": V.priority(priority)}
        if start_timeout_s is not None:
            headers["X-Fal-Request-Timeout"] = V.start_timeout(start_timeout_s)
        params = {"fal_webhook": V.webhook_url(webhook_url)} if webhook_url is not None else None
        try:
            resp = await self._send("POST", url, params=params, content=body, headers=headers,
                                    submit=True)
            return self._model(SubmitResponse, resp)
        except (E.FalTimeoutError, E.TransportError, E.InvalidResponseError) as exc:
            if isinstance(exc.__cause__, NOT_SENT):
                raise  # provably never reached fal: nothing was created
            raise E.SubmitUnknownError(
                f"the submit to {endpoint_id} may have been created, but its answer was lost "
                f"({type(exc).__name__}: {exc.message})", status=exc.status,
                request_id=exc.request_id) from exc

    async def status(self, endpoint_id: str, request_id: str, *,
                     logs: bool = False) -> QueueStatus:
        """One status poll."""
        url = request_url(self._queue, endpoint_id, request_id) + "/status"
        resp = await self._send("GET", url, params=_LOGS_ON if logs else None,
                                about=request_id.strip())
        return self._model(QueueStatus, resp)

    def stream_status(self, endpoint_id: str, request_id: str, *, logs: bool = True,
                      deadline_s: float | None = None) -> AsyncIterator[QueueStatus]:
        """Yield statuses from the SSE stream until COMPLETED; FalTimeoutError at the deadline."""
        url = request_url(self._queue, endpoint_id, request_id) + "/status/stream"
        budget = V.positive("deadline_s", self.config.deadline_s if deadline_s is None
                            else deadline_s)
        return self._stream(url, logs, budget, request_id.strip())

    async def _stream(self, url: str, logs: bool, budget: float,
                      request_id: str) -> AsyncIterator[QueueStatus]:
        params = _LOGS_ON if logs else {"logs": "0"}
        async for status in stream_statuses(self._http(), url, params=params,
                                            timeout=self._timeout, deadline_s=budget,
                                            request_id=request_id, secrets=self._secrets):
            yield status

    async def result(self, endpoint_id: str, request_id: str) -> Any:
        """The model output; RequestFailedError when the request completed with an error."""
        url = request_url(self._queue, endpoint_id, request_id)
        try:
            resp = await self._send("GET", url, accept=_RESULT_FAILED, about=request_id.strip())
        except E.ServerError as exc:
            # A 504 carrying X-Fal-Request-Timeout-Type is the request's own start timeout
            # expiring (shared/fal-api.md 2.2): its final outcome, not an outage to retry.
            cause = exc.__cause__
            if (not isinstance(cause, httpx.HTTPStatusError)
                    or "x-fal-request-timeout-type" not in cause.response.headers):
                raise
            resp = cause.response
        if (resp.status_code >= 500 and "x-fal-request-id" not in resp.headers
                and "x-fal-request-timeout-type" not in resp.headers):
            # Not fal replaying the request's outcome (that carries its request id) but a
            # proxy or ingress failing on the way: the request has not failed, the read has.
            err = error_from_response(resp.status_code, resp.headers, resp.content,
                                      secrets=self._secrets)
            err.request_id = request_id.strip()
            raise E.ServerError(err.message, status=err.status, fal_error_type=err.fal_error_type,
                                request_id=err.request_id) from httpx.HTTPStatusError(
                                    err.message, request=resp.request, response=resp)
        if resp.status_code >= 400:
            err = error_from_response(resp.status_code, resp.headers, resp.content,
                                      secrets=self._secrets)
            rid = request_id.strip()
            body = scrub_obj(_loose_json(resp.content), self._secrets)
            raise E.RequestFailedError(
                f"request {rid} failed: {err.message}", status=resp.status_code,
                fal_error_type=err.fal_error_type, request_id=rid,
                detail=body) from httpx.HTTPStatusError(
                    err.message, request=resp.request, response=resp)
        return parse_json(resp.content, request_id=request_id.strip())

    async def cancel(self, endpoint_id: str, request_id: str) -> CancelResult:
        """Ask fal to cancel; the outcome says whether it was requested, too late, or unknown."""
        url = request_url(self._queue, endpoint_id, request_id) + "/cancel"
        resp = await self._send("PUT", url, accept=frozenset({400, 404}), about=request_id.strip())
        body = _loose_json(resp.content)
        fal_status = body.get("status") if isinstance(body, dict) else None
        code = resp.status_code
        outcome: CancelOutcome
        if code == 404 or fal_status == "NOT_FOUND":
            outcome = "not_found"
        elif fal_status == "ALREADY_COMPLETED":
            outcome = "already_completed"
        elif code < 400:
            outcome = "requested"
        else:
            err = error_from_response(code, resp.headers, resp.content, secrets=self._secrets)
            raise err from httpx.HTTPStatusError(err.message, request=resp.request, response=resp)
        if fal_status is None and isinstance(body, dict) and isinstance(body.get("detail"), str):
            fal_status = body["detail"]
        return CancelResult(outcome=outcome, endpoint_id=parse_endpoint_id(endpoint_id).full,
                            request_id=request_id.strip(), http_status=code,
                            fal_status=fal_status)

    # -- platform API v1 ----------------------------------------------------------------------

    async def models(self, *, query: str | None = None, category: str | None = None,
                     status: str | None = None, endpoint_ids: Sequence[str] | None = None,
                     limit: int | None = None, cursor: str | None = None,
                     expand_openapi: bool = False) -> ModelsPage:
        """List, find or search models, one page at a time (pass ``next_cursor`` back)."""
        params = V.models_params(query=query, category=category, status=status,
                                 endpoint_ids=endpoint_ids, limit=limit, cursor=cursor,
                                 expand_openapi=expand_openapi)
        resp = await self._send("GET", self._api + "/models", params=params)
        return self._model(ModelsPage, resp)

    async def pricing(self, endpoint_ids: Sequence[str]) -> PricingResponse:
        """Unit prices for 1-50 endpoints."""
        params = [("endpoint_id", e) for e in V.endpoint_list(endpoint_ids)]
        resp = await self._send("GET", self._api + "/models/pricing", params=params)
        return self._model(PricingResponse, resp)

    async def estimate(self, estimate_type: str, endpoints: dict[str, float]) -> EstimateResponse:
        """Estimate a cost: calls per endpoint (historical_api_price) or units (unit_price)."""
        body = json.dumps(V.estimate_body(estimate_type, endpoints))
        resp = await self._send("POST", self._api + "/models/pricing/estimate", content=body,
                                headers={"Content-Type": "application/json"})
        return self._model(EstimateResponse, resp)

    # -- uploads and input schemas (tools.fal.upload, tools.fal.inputschema) ----------------

    @property
    def uploader(self) -> Uploader:
        """The upload machinery (holds the cached storage token)."""
        if self._uploader is None:
            with self._lock:
                if self._uploader is None:
                    self._uploader = Uploader(self)
        return self._uploader

    async def upload(self, source: Source, *, file_name: str | None = None,
                     content_type: str | None = None,
                     lifecycle: Lifecycle | None = None) -> UploadedFile:
        """Upload a local file (a path) or bytes to fal's CDN; the answer holds its URL.

        Files up to 100 MiB go in one request, larger ones in 10 MiB parts. `lifecycle`: a
        preset (never, immediate, 1h, 1d, 7d, 30d, 1y) or seconds > 0. UploadFileError
        (missing, a directory, unreadable, empty, over FAL_UPLOAD_MAX_BYTES) before sending.
        """
        return await self.uploader.upload(source, file_name=file_name,
                                          content_type=content_type, lifecycle=lifecycle)

    @property
    def schemas(self) -> SchemaCache:
        """Per-endpoint input schemas, cached for FAL_SCHEMA_TTL_S."""
        if self._schemas is None:
            from tools.fal.inputschema import SchemaCache

            with self._lock:
                if self._schemas is None:
                    self._schemas = SchemaCache(self, ttl_s=self.config.schema_ttl_s)
        return self._schemas

    async def input_schema(self, endpoint_id: str) -> InputSchema | SchemaUnavailable:
        """The endpoint's input schema, or SchemaUnavailable (with a reason) when none can be had."""
        return await self.schemas.get(endpoint_id)

    async def check_arguments(self, endpoint_id: str,
                              arguments: dict[str, Any]) -> InputSchema | SchemaUnavailable:
        """Check submit arguments against the endpoint's schema: ArgumentsInvalid naming each
        field at fault; the schema (defaults, media fields) when they pass; SchemaUnavailable
        when there is no schema to check against (the submit may still go ahead)."""
        return await self.schemas.check(endpoint_id, arguments)

    async def jwks(self) -> Jwks:
        """The public keys fal signs webhooks with (fetched without the API key), read exactly
        as the webhook listener reads them (`tools.webhooks.jwks_document`); keys without an
        `x` are left out, as the listener leaves them out."""
        from tools.webhooks import jwks_document

        resp = await self._send("GET", self.config.jwks_url, auth=False)
        document = jwks_document(resp)
        keys = [k for k in document["keys"] if isinstance(k, dict) and isinstance(k.get("x"), str)]
        return Jwks.model_validate({**document, "keys": keys})


def _short(url: str) -> str:
    return url.split("?", 1)[0]


def _loose_json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return content[:300].decode("utf-8", "replace")
