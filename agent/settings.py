"""The application's settings: one class, read from the environment and `.env`.

Every field is mirrored in `.env.example`. Secrets are `SecretStr`, so they print as
`**********` wherever a settings object ends up in a log or a traceback.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.fal.config import BY_NAME_ENV_PREFIX, FalConfig, clean_secret

SANDBOX_KEY = "sandbox-key:sandbox-secret"


class WebhookSettings(BaseSettings):
    """The webhook listener's limits against hostile senders and where it does its work.

    A section of :class:`Settings` (``settings.webhooks``), read from the same environment
    and `.env`; each field is one ``FAL_PERSONA_WEBHOOK_*`` variable, mirrored in `.env.example`.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True,
                                      env_prefix=BY_NAME_ENV_PREFIX)  # HOME is not `home`

    max_header_bytes: int = Field(default=16 * 1024, alias="FAL_PERSONA_WEBHOOK_MAX_HEADER_BYTES",
                                  ge=1024, le=1024 * 1024)
    """Most bytes a webhook request's line and headers may take; more answers 431 and closes."""
    max_headers: int = Field(default=64, alias="FAL_PERSONA_WEBHOOK_MAX_HEADERS", ge=8, le=1000)
    """Most header fields in one webhook request; more answers 431 and closes."""
    header_timeout_s: float = Field(default=10.0, alias="FAL_PERSONA_WEBHOOK_HEADER_TIMEOUT_S", gt=0, le=300)
    """Seconds a sender has, from connecting (or its first byte on a kept-alive connection), to
    finish sending a request's headers; then it gets 408 and is closed."""
    body_timeout_s: float = Field(default=30.0, alias="FAL_PERSONA_WEBHOOK_BODY_TIMEOUT_S", gt=0, le=600)
    """Seconds a sender has, once its headers are in, to finish sending the body; then 408 and closed."""
    keepalive_timeout_s: float = Field(default=5.0, alias="FAL_PERSONA_WEBHOOK_KEEPALIVE_TIMEOUT_S", gt=0, le=300)
    """Seconds an idle kept-alive connection to the webhook listener stays open."""
    max_connections: int = Field(default=1000, alias="FAL_PERSONA_WEBHOOK_MAX_CONNECTIONS", ge=4, le=100_000)
    """Most connections the webhook listener holds at once (lowered to fit the open-file limit).
    When full it evicts the longest-waiting connection that is between requests or still sending
    headers, and if none is, stops accepting until one closes (the rest wait in the backlog)."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, alias="FAL_PERSONA_WEBHOOK_MAX_BODY_BYTES",
                                ge=1024, le=256 * 1024 * 1024)
    """Largest webhook body accepted; Content-Length is required and over this answers 413 unread."""
    body_budget_bytes: int = Field(default=32 * 1024 * 1024, alias="FAL_PERSONA_WEBHOOK_BODY_BUDGET_BYTES",
                                   ge=0, le=4 * 1024 * 1024 * 1024)
    """Bytes of bodies over 64 KiB the listener reads at once, all connections together; a large
    delivery past it answers 503 with Retry-After (fal retries), so memory stays bounded."""
    check: Literal["auto", "process", "thread", "inline"] = Field(default="auto", alias="FAL_PERSONA_WEBHOOK_CHECK")
    """Where `webhooks serve` verifies and stores deliveries: a checker process, a thread, or the
    event loop. auto: the checker process with one worker (POSIX), the event loop with more."""
    sync: Literal["FULL", "NORMAL"] = Field(default="FULL", alias="FAL_PERSONA_WEBHOOK_SYNC")
    """The inbox's SQLite synchronous level: FULL makes every acknowledged event survive power loss."""
    http: Literal["auto", "httptools", "h11"] = Field(default="auto", alias="FAL_PERSONA_WEBHOOK_HTTP")
    """uvicorn's HTTP parser for `webhooks serve` (auto: httptools when installed)."""
    loop: Literal["auto", "asyncio", "uvloop"] = Field(default="auto", alias="FAL_PERSONA_WEBHOOK_LOOP")
    """The event loop for `webhooks serve` (auto: uvloop when installed)."""

    @field_validator("sync", mode="before")
    @classmethod
    def _upper_sync(cls, value: object) -> object:
        """`normal` is as good as `NORMAL` (SQLite reads it either way)."""
        return value.upper() if isinstance(value, str) else value

    @field_validator("check", "http", "loop", mode="before")
    @classmethod
    def _lower_choice(cls, value: object) -> object:
        """`H11` or `UVLOOP` are the same choices in lower case."""
        return value.lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    """fal-persona's configuration. Environment variables win over `.env`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True,
                                      env_prefix=BY_NAME_ENV_PREFIX)  # HOME is not `home`

    fal: FalConfig = Field(default_factory=FalConfig)
    """The fal.ai section (`FAL_KEY`, the base URLs, timeouts, retries, uploads: see
    `tools.fal.config.FalConfig`), read from the same environment and `.env` and handed to the
    client as it is. No `FAL_KEY` and no base URL set means: use the local sandbox."""
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    """OpenAI (or compatible) API key. With neither this nor OPENAI_BASE_URL, the offline planner runs."""
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    """OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp server...)."""
    model: str | None = Field(default=None, alias="FAL_PERSONA_MODEL")
    """Chat model name; overrides the persona's own choice. Default `gpt-4o-mini` online."""
    persona: str = Field(default="producer", alias="FAL_PERSONA_PERSONA")
    """Persona to start with."""
    user: str | None = Field(default=None, alias="FAL_PERSONA_USER")
    """Who is asking, for the transcript. Default: the OS user."""
    home: str | None = Field(default=None, alias="FAL_PERSONA_HOME")
    """Data dir (transcript, inbox, personas, media). Default: the platform's user data dir."""
    no_log: bool = Field(default=False, alias="FAL_PERSONA_NO_LOG")
    """Turn the transcript off for this process."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", alias="FAL_PERSONA_LOG_LEVEL")
    """Level of the application log, `<data dir>/logs/fal-persona.log` (`--log-level` wins)."""
    webhook_public_url: str | None = Field(default=None, alias="FAL_PERSONA_WEBHOOK_URL")
    """Public URL of the webhook listener, attached to submitted jobs when set."""
    webhook_host: str = Field(default="127.0.0.1", alias="FAL_PERSONA_WEBHOOK_HOST")
    """Interface the webhook listener binds."""
    webhook_port: int = Field(default=8787, alias="FAL_PERSONA_WEBHOOK_PORT")
    """Port the webhook listener binds."""
    listen: bool | None = Field(default=None, alias="FAL_PERSONA_LISTEN")
    """Run the webhook listener inside the TUI and `ask`. Unset: on with the sandbox (loopback, free),
    and in live mode only when FAL_PERSONA_WEBHOOK_URL is set (fal.ai cannot reach a loopback URL)."""
    max_tool_calls: int = Field(default=25, alias="FAL_PERSONA_MAX_TOOL_CALLS", ge=1)
    """Tool calls allowed in one turn before the run is stopped."""
    max_model_calls: int = Field(default=15, alias="FAL_PERSONA_MAX_MODEL_CALLS", ge=1)
    """Model calls allowed in one turn before the run is stopped."""
    llm_timeout_s: float = Field(default=60.0, alias="FAL_PERSONA_LLM_TIMEOUT_S", gt=0, le=3600)
    """Seconds to wait for the model server to answer (and between streamed tokens)."""
    llm_max_retries: int = Field(default=1, alias="FAL_PERSONA_LLM_MAX_RETRIES", ge=0, le=10)
    """Retries of a model request that failed in a retryable way (connection, 429, 5xx)."""
    history_max_tokens: int = Field(default=48_000, alias="FAL_PERSONA_HISTORY_MAX_TOKENS", ge=0, le=10_000_000)
    """Most tokens (approximate) of conversation each model call is sent; older whole turns are
    left out (the transcript and a resumed chat keep them). 0 sends everything."""
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    """The webhook listener's limits and tuning (their own FAL_PERSONA_WEBHOOK_* variables)."""

    @model_validator(mode="before")
    @classmethod
    def _fal_keywords_into_the_fal_section(cls, data: Any) -> Any:
        """`Settings(FAL_KEY=..., FAL_QUEUE_BASE_URL=...)` (the fal section's own variable
        names, or its field names) given as keywords build the fal section from them, on top
        of what the environment says."""
        if not isinstance(data, dict) or isinstance(data.get("fal"), FalConfig):
            return data
        names = {name for name, f in FalConfig.model_fields.items()}
        aliases = {f.alias for f in FalConfig.model_fields.values() if f.alias}
        given = {k: v for k, v in data.items() if k in aliases or k in names}
        if not given:
            return data
        rest = {k: v for k, v in data.items() if k not in given}
        return {**rest, "fal": FalConfig(**given)}

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _clean_keys(cls, value: object, info: Any) -> object:
        """Whitespace around a key is dropped; a control or non-ASCII character refuses to start."""
        field = cls.model_fields[info.field_name]
        return clean_secret(field.alias or info.field_name, value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        """`debug` is as good as `DEBUG`; blank means the default."""
        if isinstance(value, str):
            return value.strip().upper() or "INFO"
        return value

    @field_validator("listen", mode="before")
    @classmethod
    def _blank_listen_is_auto(cls, value: object) -> object:
        """`FAL_PERSONA_LISTEN=` (as in .env.example) means: decide by mode."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def fal_key(self) -> SecretStr | None:
        """The fal.ai key (`FAL_KEY`), from the fal section."""
        return self.fal.key

    @property
    def uses_sandbox(self) -> bool:
        """True when no key and no base URL is set: the app runs the local sandbox itself."""
        explicit = {"queue_base_url", "api_base_url", "jwks_url"} & self.fal.model_fields_set
        return self.fal.key is None and not explicit

    @property
    def listener_enabled(self) -> bool:
        """Whether the TUI and `ask` start the webhook listener (see `listen`)."""
        if self.listen is not None:
            return self.listen
        return self.uses_sandbox or bool(self.webhook_public_url)

    @property
    def uses_offline_planner(self) -> bool:
        """True when no OpenAI key or base URL is set."""
        return self.openai_api_key is None and not self.openai_base_url

    @property
    def user_name(self) -> str:
        """The user recorded in the transcript."""
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except Exception:  # no passwd entry in some containers
            return "unknown"

    def fal_config(self, base_url: str | None = None) -> FalConfig:
        """The client's config: the fal section; with `base_url` (a sandbox root), pointed at it."""
        if not base_url:
            return self.fal
        root = base_url.rstrip("/")
        return self.fal.model_copy(update={
            # The sandbox accepts any `id:secret`; a fixed demo key keeps it realistic.
            "key": self.fal.key or SecretStr(SANDBOX_KEY),
            "queue_base_url": root,
            "api_base_url": f"{root}/v1",
            "jwks_url": f"{root}/.well-known/jwks.json",
            "rest_base_url": root,
            "cdn_base_url": root,
        })


def with_flags(settings: Settings | None = None, *, user: str | None = None, no_log: bool = False,
               listen: bool | None = None, log_level: str | None = None) -> Settings:
    """`settings` (default: read from the environment and `.env`) with the command line's flags
    on top; the one place command-line flags are merged into settings. A flag left at its
    default keeps the setting's value."""
    base = Settings() if settings is None else settings
    updates: dict[str, object] = {}
    if user:
        updates["user"] = user
    if no_log:
        updates["no_log"] = True
    if listen is not None:
        updates["listen"] = listen
    if log_level:
        updates["log_level"] = log_level.strip().upper()
    return base.model_copy(update=updates) if updates else base


def from_args(args: argparse.Namespace) -> Settings:
    """The settings a command runs with: those `agent.cli.main` resolved (kept on `args`), or,
    for a handler called on its own, the environment's with `args`' flags on top."""
    resolved = getattr(args, "settings", None)
    if isinstance(resolved, Settings):
        return resolved
    return with_flags(user=getattr(args, "user", None), no_log=bool(getattr(args, "no_log", False)),
                      listen=getattr(args, "listen", None), log_level=getattr(args, "log_level", None))
