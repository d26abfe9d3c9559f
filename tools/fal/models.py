"""pydantic models of fal.ai's responses (shared/fal-api.md §2-§4).

Fields the client or the tools rely on are typed and required; everything else is optional,
and ``extra="allow"`` keeps fields fal adds later instead of failing on them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "QueueState", "CancelOutcome", "EstimateType", "SubmitResponse", "LogEntry", "QueueStatus", "CancelResult",
    "ModelGroup", "ModelMetadata", "ModelInfo", "ModelsPage", "Price", "PricingResponse", "EstimateResponse", "Jwk",
    "Jwks"
]


QueueState = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
CancelOutcome = Literal["requested", "already_completed", "not_found"]
EstimateType = Literal["historical_api_price", "unit_price"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SubmitResponse(_Open):
    """What submit returns: the request id and the URLs to follow it."""

    request_id: str
    status: str | None = "IN_QUEUE"
    response_url: str | None = None
    status_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    gateway_request_id: str | None = None


class LogEntry(_Open):
    """One runner log line."""

    message: str
    level: str | None = None
    source: str | None = None
    timestamp: str | None = None
    labels: dict[str, Any] | None = None


class QueueStatus(_Open):
    """A request's queue status; a failed request is COMPLETED with ``error`` set."""

    status: QueueState
    request_id: str | None = None
    queue_position: int | None = None
    response_url: str | None = None
    status_url: str | None = None
    cancel_url: str | None = None
    logs: list[LogEntry] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None

    @property
    def done(self) -> bool:
        """True once the request reached COMPLETED (successfully or not)."""
        return self.status == "COMPLETED"

    @property
    def failed(self) -> bool:
        """True when COMPLETED with an error."""
        return self.status == "COMPLETED" and bool(self.error or self.error_type)


class CancelResult(_Open):
    """The outcome of a cancel: ``requested``, ``already_completed`` or ``not_found``."""

    outcome: CancelOutcome
    endpoint_id: str
    request_id: str
    http_status: int
    fal_status: str | None = None


class ModelGroup(_Open):
    """A model family label."""

    key: str
    label: str


class ModelMetadata(_Open):
    """Registry metadata of an endpoint (absent for endpoints without a registry entry)."""

    display_name: str
    category: str
    status: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    updated_at: str | None = None
    is_favorited: bool | None = None
    thumbnail_url: str | None = None
    model_url: str | None = None
    date: str | None = None
    highlighted: bool | None = None
    pinned: bool | None = None
    license_type: str | None = None
    group: ModelGroup | None = None
    kind: str | None = None
    duration_estimate: float | None = None


class ModelInfo(_Open):
    """One endpoint in a models page."""

    endpoint_id: str
    metadata: ModelMetadata | None = None
    openapi: dict[str, Any] | None = None
    enterprise_status: Any = None


class ModelsPage(_Open):
    """A page of ``GET /v1/models``; pass ``next_cursor`` back for the next page."""

    models: list[ModelInfo]
    has_more: bool
    next_cursor: str | None = None


class Price(_Open):
    """The unit price of one endpoint."""

    endpoint_id: str
    unit_price: float = Field(ge=0)
    unit: str
    currency: str


class PricingResponse(_Open):
    """``GET /v1/models/pricing``."""

    prices: list[Price]
    has_more: bool = False
    next_cursor: str | None = None


class EstimateResponse(_Open):
    """``POST /v1/models/pricing/estimate``."""

    estimate_type: str
    total_cost: float = Field(ge=0)
    currency: str


class Jwk(_Open):
    """One webhook-signing public key; ``x`` is the base64url Ed25519 key."""

    x: str
    kty: str | None = None
    crv: str | None = None
    kid: str | None = None


class Jwks(_Open):
    """The JWKS document fal signs webhooks with."""

    keys: list[Jwk]
