"""fal.ai client: config, async client, response models, the error tree and the URL rules.

Nothing here knows about LangChain or the TUI; ``tools.catalog`` adapts it into tools.
"""

from __future__ import annotations

from tools.fal.client import FalClient
from tools.fal.config import FalConfig
from tools.fal.errors import (
    AuthError, FalError, FalTimeoutError, ForbiddenError, InputError, InvalidResponseError,
    LockedAccountError, NotFoundError, RateLimitedError, RequestFailedError, ServerError,
    TransportError, ValidationError,
)
from tools.fal.models import (
    CancelResult, EstimateResponse, Jwk, Jwks, LogEntry, ModelInfo, ModelMetadata, ModelsPage,
    Price, PricingResponse, QueueStatus, SubmitResponse,
)
from tools.fal.urls import EndpointId, check_request_id, parse_endpoint_id

__all__ = [
    "AuthError", "CancelResult", "EndpointId", "EstimateResponse", "FalClient", "FalConfig",
    "FalError", "FalTimeoutError", "ForbiddenError", "InputError", "InvalidResponseError", "Jwk",
    "Jwks", "LockedAccountError", "LogEntry", "ModelInfo", "ModelMetadata", "ModelsPage",
    "NotFoundError", "Price", "PricingResponse", "QueueStatus", "RateLimitedError",
    "RequestFailedError", "ServerError", "SubmitResponse", "TransportError", "ValidationError",
    "check_request_id", "parse_endpoint_id",
]
