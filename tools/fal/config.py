"""Connection settings for the fal.ai client, read from the environment.

This is the tools-side view of configuration; ``agent.settings.Settings`` embeds the same
variables for the application and builds a :class:`FalConfig` from them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.redact import remember_secrets

__all__ = [
    "DEFAULT_QUEUE_BASE_URL", "DEFAULT_API_BASE_URL", "DEFAULT_JWKS_URL", "DEFAULT_REST_BASE_URL",
    "DEFAULT_CDN_BASE_URL", "GIB", "clean_secret", "settings_error_text", "BY_NAME_ENV_PREFIX", "FalConfig"
]


DEFAULT_QUEUE_BASE_URL = "https://queue.fal.run"
DEFAULT_API_BASE_URL = "https://api.fal.ai/v1"
DEFAULT_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
DEFAULT_REST_BASE_URL = "https://rest.fal.ai"
DEFAULT_CDN_BASE_URL = "https://v3.fal.media"
GIB = 1024 ** 3


def clean_secret(variable: str, value: Any) -> Any:
    """A key as it may be sent: surrounding whitespace stripped (a pasted trailing newline);
    ValueError naming `variable`, never the value, when a control or non-ASCII character is left.

    Such a key could never authenticate, and the HTTP stack would quote it back in an error."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(raw, str):
        return value
    if not isinstance(value, SecretStr):  # read from the environment or .env: mask it everywhere
        remember_secrets(raw)
    stripped = raw.strip()
    if not stripped:
        return None
    bad = next((c for c in stripped if ord(c) < 0x21 or ord(c) > 0x7E), None)
    if bad is not None:
        what = "a control character" if ord(bad) < 0x20 or ord(bad) == 0x7F else (
            "a space" if bad == " " else "a non-ASCII character")
        raise ValueError(f"{variable} holds {what}; copy the key again without it")
    return stripped


def settings_error_text(exc: ValidationError) -> str:
    """One line per field at fault, by its variable name, without the value that was given."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(message if message.startswith(field) else f"{field}: {message}")
    return "invalid settings: " + "; ".join(parts)


# With populate_by_name, pydantic-settings also reads each field's *name* from the environment
# (HOME would set `home`, KEY would set `key`). A prefix no one sets puts those names out of
# reach; the aliases (FAL_KEY, FAL_PERSONA_HOME, ...) are read as they are, and keyword
# arguments by name keep working.
BY_NAME_ENV_PREFIX = "FAL_PERSONA_FIELD_"


class FalConfig(BaseSettings):
    """Where fal.ai lives and how patiently to talk to it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True,
                                      env_prefix=BY_NAME_ENV_PREFIX)

    key: SecretStr | None = Field(default=None, alias="FAL_KEY")
    """The fal.ai API key (`key_id:key_secret`), sent as `Authorization: Key ...`. Never logged."""
    queue_base_url: str = Field(default=DEFAULT_QUEUE_BASE_URL, alias="FAL_QUEUE_BASE_URL")
    """Base URL of the queue API (submit, status, stream, result, cancel)."""
    api_base_url: str = Field(default=DEFAULT_API_BASE_URL, alias="FAL_API_BASE_URL")
    """Base URL of the platform API v1 (models, pricing, estimate)."""
    jwks_url: str = Field(default=DEFAULT_JWKS_URL, alias="FAL_JWKS_URL")
    """Where the webhook-signing public keys are published."""
    rest_base_url: str = Field(default=DEFAULT_REST_BASE_URL, alias="FAL_REST_BASE_URL")
    """Base URL of fal's REST API, where upload tokens come from (shared/fal-api.md 3.6)."""
    cdn_base_url: str = Field(default=DEFAULT_CDN_BASE_URL, alias="FAL_CDN_BASE_URL")
    """Base URL of fal's CDN, which takes single-request uploads (files up to 100 MiB)."""
    upload_max_bytes: int = Field(default=GIB, alias="FAL_UPLOAD_MAX_BYTES", gt=0)
    """Largest file `upload` accepts (default 1 GiB); bigger ones are refused before sending."""
    upload_concurrency: int = Field(default=4, alias="FAL_UPLOAD_CONCURRENCY", ge=1, le=10)
    """Parts of a multipart upload in flight at once (1-10; each holds 10 MiB in memory)."""
    upload_min_rate_bps: float = Field(default=256 * 1024, alias="FAL_UPLOAD_MIN_RATE_BPS", gt=0)
    """Slowest upload rate (bytes/s) waited for: a request carrying N bytes may take
    FAL_DEADLINE_S + N / this, retries included, before it is given up."""
    schema_ttl_s: float = Field(default=600.0, alias="FAL_SCHEMA_TTL_S", ge=0)
    """Seconds an endpoint's input schema is reused before it is fetched again (0: every time)."""
    connect_timeout_s: float = Field(default=5.0, alias="FAL_CONNECT_TIMEOUT_S", gt=0)
    """Seconds to wait for a TCP/TLS connection."""
    read_timeout_s: float = Field(default=30.0, alias="FAL_READ_TIMEOUT_S", gt=0)
    """Seconds to wait for a response (or between SSE bytes) before giving up."""
    deadline_s: float = Field(default=60.0, alias="FAL_DEADLINE_S", gt=0)
    """Total seconds one call may take, retries included."""
    max_retries: int = Field(default=4, alias="FAL_MAX_RETRIES", ge=0, le=10)
    """Retries on 408/409/429/502/503/504 and transport errors (never for a submit that may have landed)."""

    @field_validator("key", mode="before")
    @classmethod
    def _clean_key(cls, value: Any) -> Any:
        return clean_secret("FAL_KEY", value)
