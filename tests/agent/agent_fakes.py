"""Small fake fal tools for runner tests: the contract's names, kinds and result shapes.

`FakeFal` records every call, so a test can assert what ran (and what did not).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import adispatch_custom_event
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from tools.registry import TOOL_KINDS as TOOL_KIND

PRICES = {"fal-ai/flux/dev": 0.025, "fal-ai/flux/schnell": 0.003}


@dataclass
class FakeFal:
    """A fake backend: prices, an estimate rule, and jobs that complete when streamed."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)

    def submitted(self) -> list[dict[str, Any]]:
        """Arguments of every submit that ran."""
        return [a for n, a in self.calls if n == "submit_queue_request"]

    def names(self) -> list[str]:
        """Names of the tools that ran, in order."""
        return [n for n, _ in self.calls]


class SearchArgs(BaseModel):
    query: str | None = None
    category: str | None = None
    limit: int = Field(default=10, ge=1, le=100)


class PricingArgs(BaseModel):
    endpoint_ids: list[str] = Field(min_length=1)


class EstimateArgs(BaseModel):
    estimate_type: str
    endpoints: dict[str, float]


class SubmitArgs(BaseModel):
    endpoint_id: str
    arguments: dict[str, Any]
    webhook_url: str | None = None
    priority: str = "normal"


class QueueArgs(BaseModel):
    endpoint_id: str
    request_id: str


class NoArgs(BaseModel):
    pass


def build_fake_tools(fal: FakeFal) -> list[StructuredTool]:
    """The nine tools over `fal`, with the contract's tags, metadata and response format."""

    async def search_models(**kw: Any) -> tuple[str, Any]:
        fal.calls.append(("search_models", kw))
        models = [{"endpoint_id": ep} for ep in PRICES]
        return f"Found {len(models)} models: " + ", ".join(PRICES), {"models": models}

    async def get_pricing(endpoint_ids: list[str]) -> tuple[str, Any]:
        fal.calls.append(("get_pricing", {"endpoint_ids": endpoint_ids}))
        unknown = [e for e in endpoint_ids if e not in PRICES]
        if unknown:
            return f"Error: unknown endpoint {unknown[0]}", {"error": {"type": "not_found"}}
        prices = [{"endpoint_id": e, "unit_price": PRICES[e], "unit": "image"} for e in endpoint_ids]
        return "; ".join(f"{p['endpoint_id']}: ${p['unit_price']}/image" for p in prices), {"prices": prices}

    async def estimate_pricing(estimate_type: str, endpoints: dict[str, float]) -> tuple[str, Any]:
        fal.calls.append(("estimate_pricing", {"estimate_type": estimate_type, "endpoints": endpoints}))
        total = round(sum(PRICES.get(e, 1.0) * q for e, q in endpoints.items()), 6)
        return f"Estimated total: ${total:.4f} USD", {"estimate_type": estimate_type, "total_cost": total, "currency": "USD"}

    async def submit_queue_request(endpoint_id: str, arguments: dict[str, Any], webhook_url: str | None = None,
                                   priority: str = "normal") -> tuple[str, Any]:
        fal.calls.append(("submit_queue_request", {"endpoint_id": endpoint_id, "arguments": arguments}))
        rid = str(uuid.uuid4())
        fal.jobs[rid] = "IN_QUEUE"
        return f"Submitted to {endpoint_id}. request_id: {rid}", {"request_id": rid, "status": "IN_QUEUE"}

    async def get_queue_status(endpoint_id: str, request_id: str) -> tuple[str, Any]:
        fal.calls.append(("get_queue_status", {"endpoint_id": endpoint_id, "request_id": request_id}))
        status = fal.jobs.get(request_id)
        if status is None:
            return f"Error: no request {request_id}", {"error": {"type": "not_found"}}
        return f"status: {status}", {"status": status, "request_id": request_id}

    async def stream_queue_status(endpoint_id: str, request_id: str) -> tuple[str, Any]:
        fal.calls.append(("stream_queue_status", {"endpoint_id": endpoint_id, "request_id": request_id}))
        if request_id not in fal.jobs:
            return f"Error: no request {request_id}", {"error": {"type": "not_found"}}
        for status in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED"):
            fal.jobs[request_id] = status
            await adispatch_custom_event("fal_queue_status", {"status": status, "request_id": request_id,
                                                              "endpoint_id": endpoint_id})
        return "status: COMPLETED", {"status": "COMPLETED", "request_id": request_id}

    async def get_queue_result(endpoint_id: str, request_id: str) -> tuple[str, Any]:
        fal.calls.append(("get_queue_result", {"endpoint_id": endpoint_id, "request_id": request_id}))
        if fal.jobs.get(request_id) != "COMPLETED":
            return "Error: the request is not complete", {"error": {"type": "not_ready"}}
        out = {"images": [{"url": f"https://example.invalid/{request_id}.png"}]}
        return f"Result: {out}", out

    async def cancel_queue_request(endpoint_id: str, request_id: str) -> tuple[str, Any]:
        fal.calls.append(("cancel_queue_request", {"endpoint_id": endpoint_id, "request_id": request_id}))
        return "CANCELLATION_REQUESTED", {"status": "CANCELLATION_REQUESTED"}

    async def get_webhook_jwks() -> tuple[str, Any]:
        fal.calls.append(("get_webhook_jwks", {}))
        return "1 key", {"keys": [{"kty": "OKP"}]}

    specs = [(search_models, SearchArgs), (get_pricing, PricingArgs), (estimate_pricing, EstimateArgs),
             (submit_queue_request, SubmitArgs), (get_queue_status, QueueArgs), (stream_queue_status, QueueArgs),
             (get_queue_result, QueueArgs), (cancel_queue_request, QueueArgs), (get_webhook_jwks, NoArgs)]
    tools = []
    for fn, schema in specs:
        kind = TOOL_KIND[fn.__name__]
        tools.append(StructuredTool.from_function(
            coroutine=fn, name=fn.__name__, description=f"fake {fn.__name__}", args_schema=schema,
            response_format="content_and_artifact", tags=["fal", kind], metadata={"kind": kind}))
    return tools
