"""Connection settings for the fal.ai client, read from the environment.

This is the tools-side view of configuration; ``agent.settings.Settings`` embeds the same
variables for the application and builds a :class:`FalConfig` from them.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_QUEUE_BASE_URL = "https://queue.fal.run"
DEFAULT_API_BASE_URL = "https://api.fal.ai/v1"
DEFAULT_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"


class FalConfig(BaseSettings):
    """Where fal.ai lives and how patiently to talk to it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    key: SecretStr | None = Field(default=None, alias="FAL_KEY")
    """The fal.ai API key (`key_id:key_secret`), sent as `Authorization: Key ...`. Never logged."""
    queue_base_url: str = Field(default=DEFAULT_QUEUE_BASE_URL, alias="FAL_QUEUE_BASE_URL")
    """Base URL of the queue API (submit, status, stream, result, cancel)."""
    api_base_url: str = Field(default=DEFAULT_API_BASE_URL, alias="FAL_API_BASE_URL")
    """Base URL of the platform API v1 (models, pricing, estimate)."""
    jwks_url: str = Field(default=DEFAULT_JWKS_URL, alias="FAL_JWKS_URL")
    """Where the webhook-signing public keys are published."""
    connect_timeout_s: float = Field(default=5.0, alias="FAL_CONNECT_TIMEOUT_S", gt=0)
    """Seconds to wait for a TCP/TLS connection."""
    read_timeout_s: float = Field(default=30.0, alias="FAL_READ_TIMEOUT_S", gt=0)
    """Seconds to wait for a response (or between SSE bytes) before giving up."""
    deadline_s: float = Field(default=60.0, alias="FAL_DEADLINE_S", gt=0)
    """Total seconds one call may take, retries included."""
    max_retries: int = Field(default=4, alias="FAL_MAX_RETRIES", ge=0, le=10)
    """Retries on 408/409/429/502/503/504 and transport errors (never for a submit that may have landed)."""
