"""fal.ai client: config, async client, response models, the error tree and the URL rules.

Nothing here knows about LangChain or the TUI; ``tools.catalog`` adapts it into tools.
"""

from __future__ import annotations

from tools.fal.client import FalClient
from tools.fal.config import FalConfig
from tools.fal.errors import (
    ArgumentsInvalid, AuthError, FalError, FalTimeoutError, FileMissingError, FileTooLargeError,
    FileUnreadableError, ForbiddenError, InputError, InvalidResponseError, LockedAccountError,
    NotAFileError, NotFoundError, RateLimitedError, RequestFailedError, ServerError,
    SubmitUnknownError, TransportError, UploadFileError, ValidationError,
)
from tools.fal.files import LIFECYCLE_PRESETS, Lifecycle
from tools.fal.inputschema import (
    InputField, InputSchema, SchemaCache, SchemaUnavailable, compact_fields,
    input_schema_from_openapi,
)
from tools.fal.models import (
    CancelResult, EstimateResponse, Jwk, Jwks, LogEntry, ModelInfo, ModelMetadata, ModelsPage,
    Price, PricingResponse, QueueStatus, SubmitResponse,
)
from tools.fal.upload import UploadedFile
from tools.fal.urls import EndpointId, check_request_id, parse_endpoint_id

__all__ = [
    "LIFECYCLE_PRESETS", "ArgumentsInvalid", "AuthError", "CancelResult", "EndpointId",
    "EstimateResponse", "FalClient", "FalConfig", "FalError", "FalTimeoutError",
    "FileMissingError", "FileTooLargeError", "FileUnreadableError", "ForbiddenError",
    "InputError", "InputField", "InputSchema", "InvalidResponseError", "Jwk", "Jwks",
    "Lifecycle", "LockedAccountError", "LogEntry", "ModelInfo", "ModelMetadata", "ModelsPage",
    "NotAFileError", "NotFoundError", "Price", "PricingResponse", "QueueStatus",
    "RateLimitedError", "RequestFailedError", "SchemaCache", "SchemaUnavailable", "ServerError",
    "SubmitResponse", "SubmitUnknownError", "TransportError", "UploadFileError", "UploadedFile",
    "ValidationError", "check_request_id", "compact_fields", "input_schema_from_openapi",
    "parse_endpoint_id",
]
