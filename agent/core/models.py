"""The model factory: an OpenAI-compatible chat model when configured, else the offline planner.

Both are LangChain chat models with `bind_tools`, so the runner has one code path.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from tools.errors import AppError

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

    from agent.settings import Settings

__all__ = [
    "DEFAULT_MODEL", "OFFLINE_MODEL", "PLACEHOLDER_KEY", "model_name_for", "make_model", "ModelStreamCutError",
    "checked_chat_openai"
]


DEFAULT_MODEL = "gpt-4o-mini"
OFFLINE_MODEL = "offline-planner"
# Local servers (Ollama, llama.cpp...) ignore the key, but the OpenAI client refuses to start without one.
PLACEHOLDER_KEY = "not-needed"


def model_name_for(settings: Settings, persona: Any = None) -> str:
    """The model that will answer: FAL_PERSONA_MODEL > persona.model > the default."""
    if settings.uses_offline_planner:
        return OFFLINE_MODEL
    return settings.model or getattr(persona, "model", None) or DEFAULT_MODEL


def make_model(settings: Settings, persona: Any = None) -> BaseChatModel:
    """Build the chat model for `persona` under `settings` (imports LangChain lazily)."""
    if settings.uses_offline_planner:
        from agent.planner import OfflinePlanner

        return OfflinePlanner(streaming=True)
    import httpx

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_KEY
    read = float(getattr(settings, "llm_timeout_s", 60.0))
    kwargs: dict[str, Any] = {
        "model": model_name_for(settings, persona), "api_key": key,
        "streaming": True, "stream_usage": True,
        "max_retries": int(getattr(settings, "llm_max_retries", 1)),
        # The OpenAI client waits 600 s by default; a server that never answers must not hold a turn.
        "timeout": httpx.Timeout(read, connect=min(10.0, read)),
    }
    from agent.core.llm_http import model_http_clients

    # Every request body is redacted on its way to the provider (tool errors, echoed answers).
    kwargs.update(model_http_clients())
    if settings.openai_base_url:
        kwargs["base_url"] = settings.openai_base_url
    return checked_chat_openai()(**kwargs)


class ModelStreamCutError(AppError, RuntimeError):
    """The model's streamed reply ended before the model said it had finished."""


@functools.cache
def checked_chat_openai() -> type[BaseChatModel]:
    """`ChatOpenAI` whose streamed reply must end with a finish reason (else ModelStreamCutError):
    a stream cut off mid-reply is not taken for a whole answer."""
    from langchain_openai import ChatOpenAI

    class CheckedChatOpenAI(ChatOpenAI):
        async def _astream(self, *args: Any, **kwargs: Any) -> Any:
            finished = False
            async for chunk in super()._astream(*args, **kwargs):
                finished = finished or bool((chunk.generation_info or {}).get("finish_reason"))
                yield chunk
            if not finished:
                raise ModelStreamCutError("the model's reply was cut off (the stream ended with no "
                                          "finish reason)")

        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            finished = False
            for chunk in super()._stream(*args, **kwargs):
                finished = finished or bool((chunk.generation_info or {}).get("finish_reason"))
                yield chunk
            if not finished:
                raise ModelStreamCutError("the model's reply was cut off (the stream ended with no "
                                          "finish reason)")

    return CheckedChatOpenAI
