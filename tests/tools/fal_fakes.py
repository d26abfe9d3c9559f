"""An in-process fal.ai emulation for httpx.MockTransport (shapes from shared/fal-api.md).

Deliberately small: the real emulator is sandbox/; this one exists so client and tool tests
run without it and can count every request that reached "the network".
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tools.fal.config import FalConfig

QUEUE = "http://queue.test"
API = "http://api.test/v1"
JWKS_URL = "http://rest.test/.well-known/jwks.json"
KEY = "key-id-123:super-secret-value-456"
DONE_ID = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"
QUEUED_ID = "0b7d9e11-3c2f-4b8e-9a55-6f1e2c1a0d7b"
FAILED_ID = "9a553c2f-0b7d-4e11-8b8e-6f1e2c1a0d7b"
JWK_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

MODELS = [
    {"endpoint_id": "fal-ai/flux/dev",
     "metadata": {"display_name": "FLUX.1 [dev]", "category": "text-to-image",
                  "description": "Text to image", "status": "active", "tags": ["new"],
                  "updated_at": "2026-01-02T00:00:00Z", "is_favorited": None,
                  "thumbnail_url": "https://example.invalid/t.jpg",
                  "model_url": "https://fal.run/fal-ai/flux/dev", "date": "2024-08-01T00:00:00Z",
                  "highlighted": False, "pinned": False, "brand_new_field": 1},
     "openapi": {"openapi": "3.0.4", "info": {"title": "flux"}, "paths": {}}},
    {"endpoint_id": "fal-ai/flux/schnell",
     "metadata": {"display_name": "FLUX.1 [schnell]", "category": "text-to-image",
                  "description": "Fast", "status": "active", "tags": [],
                  "updated_at": "2026-01-02T00:00:00Z", "is_favorited": None,
                  "thumbnail_url": "https://example.invalid/s.jpg",
                  "model_url": "https://fal.run/fal-ai/flux/schnell",
                  "date": "2024-08-01T00:00:00Z", "highlighted": False, "pinned": False}},
    {"endpoint_id": "fal-ai/old-model"},
]
PRICES = {"fal-ai/flux/dev": (0.025, "image"), "fal-ai/flux/schnell": (0.003, "image")}


@dataclass
class Job:
    endpoint: str
    polls: int = 0
    completed: bool = False
    failed: bool = False
    cancelled: bool = False


@dataclass
class FakeFal:
    """Routes queue, platform and JWKS requests; records every request it sees."""

    require_key: bool = True
    jobs: dict[str, Job] = field(default_factory=dict)
    seen: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.jobs.setdefault(DONE_ID, Job("fal-ai/flux", completed=True))
        self.jobs.setdefault(QUEUED_ID, Job("fal-ai/flux"))
        self.jobs.setdefault(FAILED_ID, Job("fal-ai/flux", completed=True, failed=True))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def config(self, **extra: Any) -> FalConfig:
        values: dict[str, Any] = {"FAL_KEY": KEY, "FAL_QUEUE_BASE_URL": QUEUE,
                                  "FAL_API_BASE_URL": API, "FAL_JWKS_URL": JWKS_URL,
                                  "FAL_DEADLINE_S": 5}
        return FalConfig(**{**values, **extra})

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        host = request.url.host
        if host == "rest.test":
            return _json(200, {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": JWK_X}]})
        if self.require_key and request.headers.get("authorization") != f"Key {KEY}":
            if host == "api.test":
                return _json(401, {"error": {"type": "authorization_error",
                                             "message": "Authentication required"}})
            return _json(401, {"detail": "No user found for Key ID and Secret"})
        if host == "api.test":
            return self._platform(request)
        return self._queue(request)

    # -- queue ---------------------------------------------------------------------------

    def _queue(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if "requests" not in parts:
            if request.method != "POST":
                return _json(405, {"detail": "Method Not Allowed"})
            rid = str(uuid.uuid4())
            app = "/".join(parts[:2])
            self.jobs[rid] = Job(app)
            return _json(200, {"status": "IN_QUEUE", "request_id": rid, "queue_position": 0,
                               **_urls(app, rid)}, rid)
        i = parts.index("requests")
        app, rid, tail = "/".join(parts[:i]), parts[i + 1], parts[i + 2:]
        job = self.jobs.get(rid)
        if tail == ["cancel"]:
            if job is None:
                return _json(404, {"status": "NOT_FOUND"}, rid)
            if job.completed:
                return _json(400, {"status": "ALREADY_COMPLETED"}, rid)
            job.cancelled = job.completed = True
            return _json(202, {"status": "CANCELLATION_REQUESTED"}, rid)
        if job is None:
            return _json(404, {"detail": f"Request {rid} not found"}, rid)
        if tail == ["status"]:
            job.polls += 1
            if job.polls >= 2:
                job.completed = True
            state = "COMPLETED" if job.completed else "IN_PROGRESS"
            return _json(200 if job.completed else 202, self.status_body(app, rid, state,
                                                                         job), rid)
        if tail == ["status", "stream"]:
            job.completed = True
            chunks = [self.status_body(app, rid, s, job) for s in
                      ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")]
            text = "".join(f"data: {json.dumps(c)}\n\n: ping\n\n" for c in chunks)
            return httpx.Response(200, content=text.encode(),
                                  headers={"content-type": "text/event-stream",
                                           "x-fal-request-id": rid})
        if not tail:
            if job.failed:
                return _json(422, {"detail": [{"loc": ["body", "prompt"],
                                               "msg": "field required",
                                               "type": "missing"}]}, rid)
            return _json(200, {"images": [{"url": "https://example.invalid/a.png",
                                           "width": 1024, "height": 1024}], "seed": 42}, rid)
        return _json(404, {"detail": "Not Found"}, rid)

    def status_body(self, app: str, rid: str, state: str, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"status": state, "request_id": rid, **_urls(app, rid),
                                "logs": [{"message": "step 3/28", "level": "INFO",
                                          "source": "USER", "timestamp": "2026-01-05T10:00:01"}],
                                "metrics": {}}
        if state == "IN_QUEUE":
            body["queue_position"] = 1
        if state == "COMPLETED":
            body["metrics"] = {"inference_time": 2.41}
            body["error"] = "Invalid status code: 422" if job.failed else None
            body["error_type"] = "validation_error" if job.failed else None
        return body

    # -- platform ------------------------------------------------------------------------

    def _platform(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        q = request.url.params
        if path == "/models":
            models = MODELS
            if "q" in q:
                models = [m for m in models if q["q"] in m["endpoint_id"]]
            if q.get_list("endpoint_id"):
                models = [m for m in models if m["endpoint_id"] in q.get_list("endpoint_id")]
            if q.get("expand") != "openapi-3.0":
                models = [{k: v for k, v in m.items() if k != "openapi"} for m in models]
            limit = int(q.get("limit", "50"))
            more = len(models) > limit
            return _json(200, {"models": models[:limit], "has_more": more,
                               "next_cursor": "Mg==" if more else None})
        if path == "/models/pricing":
            ids = q.get_list("endpoint_id")
            unknown = [e for e in ids if e not in PRICES]
            if unknown:
                return _json(404, {"error": {"type": "not_found",
                                             "message": f"Unknown endpoint {unknown[0]}"}})
            return _json(200, {"prices": [{"endpoint_id": e, "unit_price": PRICES[e][0],
                                           "unit": PRICES[e][1], "currency": "USD"}
                                          for e in ids], "next_cursor": None, "has_more": False})
        if path == "/models/pricing/estimate":
            body = json.loads(request.content)
            total = 0.0
            for ep, qty in body["endpoints"].items():
                total += PRICES.get(ep, (0.01, ""))[0] * next(iter(qty.values()))
            return _json(200, {"estimate_type": body["estimate_type"],
                               "total_cost": round(total, 6), "currency": "USD"})
        return _json(404, {"error": {"type": "not_found", "message": "Resource not found"}})


def _urls(app: str, rid: str) -> dict[str, str]:
    base = f"{QUEUE}/{app}/requests/{rid}"
    return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}


def _json(status: int, body: Any, rid: str | None = None) -> httpx.Response:
    headers = {"x-fal-request-id": rid} if rid else {}
    return httpx.Response(status, json=body, headers=headers)
