"""The model factory: an OpenAI-compatible chat model when configured, else the offline planner.

Both are LangChain chat models with `bind_tools`, so the runner has one code path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

    from agent.settings import Settings

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
    from langchain_openai import ChatOpenAI

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_KEY
    kwargs: dict[str, Any] = {"model": model_name_for(settings, persona), "api_key": key,
                              "streaming": True, "stream_usage": True, "max_retries": 1}
    if settings.openai_base_url:
        kwargs["base_url"] = settings.openai_base_url
    return ChatOpenAI(**kwargs)
