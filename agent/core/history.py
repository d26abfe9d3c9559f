"""Keeping a long conversation inside the model's context: trimming what each request sends.

The agent's state (and the transcript) keep the whole conversation; only the copy a model
call sends is cut, to the newest whole turns that fit `max_tokens` (approximate count: about
four characters a token). A cut always falls before a user message, so a tool call is never
sent without its result or a result without its call; the current turn is always sent whole,
even when it alone is larger. `max_tokens = 0` sends everything.

Trimming, not LangChain's summarization middleware: a summary costs a model call per cut,
needs a model that can write one (the offline planner cannot), and would replace history
with text the transcript never held. Trimming is free, deterministic and loses nothing the
transcript or a resumed chat could show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import BaseMessage, HumanMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately

__all__ = ["DEFAULT_MAX_TOKENS", "trimmed", "HistoryTrimMiddleware"]


DEFAULT_MAX_TOKENS = 48_000


def trimmed(messages: Sequence[BaseMessage], max_tokens: int) -> list[BaseMessage]:
    """The newest whole turns of `messages` that fit `max_tokens`, the current turn always."""
    messages = list(messages)
    if max_tokens <= 0 or count_tokens_approximately(messages) <= max_tokens:
        return messages
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=0)
    earlier, current = messages[:last_human], messages[last_human:]
    budget = max_tokens - count_tokens_approximately(current)
    if budget <= 0 or not earlier:
        return current
    kept = trim_messages(earlier, max_tokens=budget, token_counter=count_tokens_approximately,
                         strategy="last", start_on="human", allow_partial=False)
    return [*kept, *current]


class HistoryTrimMiddleware(AgentMiddleware):
    """Sends each model call only the newest turns that fit `max_tokens` (see module docstring)."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        super().__init__()
        self.max_tokens = int(max_tokens)

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        messages = trimmed(request.messages, self.max_tokens)
        if len(messages) == len(request.messages):
            return await handler(request)
        return await handler(request.override(messages=messages))
