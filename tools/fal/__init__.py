"""fal.ai client: config, async client, response models, the error tree and the URL rules.

Nothing here knows about LangChain or the TUI; ``tools.catalog`` adapts it into tools.
The names below load on first use, so reading the config does not import the client.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from tools.fal.client import FalClient
    from tools.fal.config import FalConfig
    from tools.fal.errors import (
        ArgumentsInvalid,
        AuthError,
        FalError,
        FalTimeoutError,
        FileMissingError,
        FileTooLargeError,
        FileUnreadableError,
        ForbiddenError,
        InputError,
        InvalidResponseError,
        LockedAccountError,
        NotAFileError,
        NotFoundError,
        RateLimitedError,
        RequestFailedError,
        ServerError,
        SubmitUnknownError,
        TransportError,
        UploadFileError,
        ValidationError,
    )
    from tools.fal.files import LIFECYCLE_PRESETS, Lifecycle
    from tools.fal.inputschema import (
        InputField,
        InputSchema,
        SchemaCache,
        SchemaUnavailable,
        compact_fields,
        input_schema_from_openapi,
    )
    from tools.fal.models import (
        CancelResult,
        EstimateResponse,
        Jwk,
        Jwks,
        LogEntry,
        ModelInfo,
        ModelMetadata,
        ModelsPage,
        Price,
        PricingResponse,
        QueueStatus,
        SubmitResponse,
    )
    from tools.fal.upload import UploadedFile
    from tools.fal.urls import EndpointId, check_request_id, parse_endpoint_id

# Each public name by the submodule defining it: `agent.settings` reads `tools.fal.config` at
# start-up, before the TUI paints, and the client (httpx) would add a quarter of a second.
_MODULES: dict[str, tuple[str, ...]] = {
    "client": ("FalClient",),
    "config": ("FalConfig",),
    "errors": (
        "ArgumentsInvalid", "AuthError", "FalError", "FalTimeoutError", "FileMissingError",
        "FileTooLargeError", "FileUnreadableError", "ForbiddenError", "InputError", "InvalidResponseError",
        "LockedAccountError", "NotAFileError", "NotFoundError", "RateLimitedError", "RequestFailedError",
        "ServerError", "SubmitUnknownError", "TransportError", "UploadFileError", "ValidationError"
    ),
    "files": ("LIFECYCLE_PRESETS", "Lifecycle"),
    "inputschema": (
        "InputField", "InputSchema", "SchemaCache", "SchemaUnavailable", "compact_fields",
        "input_schema_from_openapi"
    ),
    "models": (
        "CancelResult", "EstimateResponse", "Jwk", "Jwks", "LogEntry", "ModelInfo", "ModelMetadata",
        "ModelsPage", "Price", "PricingResponse", "QueueStatus", "SubmitResponse"
    ),
    "upload": ("UploadedFile",),
    "urls": ("EndpointId", "check_request_id", "parse_endpoint_id"),
}
_WHERE = {name: f"tools.fal.{module}" for module, names in _MODULES.items() for name in names}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tools.fal' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
