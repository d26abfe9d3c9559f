"""`OfflinePlanner`: a LangChain chat model that plans tool calls from the command grammar.

Each call reads the conversation: it parses the latest human message into steps
(`agent.planner.grammar`), counts the tool-call messages it already emitted since then, and
emits the next step's tool call, filling `endpoint_id`/`request_id` from earlier results when a
step says "it". After the last step (or a failed one) it answers with a short summary.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.planner import refs
from agent.planner.grammar import HELP_TEXT, GrammarError, Step, parse

_LISTS = {"search_models", "get_pricing"}
_ACTIONS = {
    "search_models": "searched the models",
    "get_pricing": "looked up prices",
    "estimate_pricing": "estimated the cost",
    "submit_queue_request": "submitted a request",
    "get_queue_status": "checked the status",
    "stream_queue_status": "watched the request",
    "get_queue_result": "fetched the result",
    "cancel_queue_request": "asked to cancel",
    "get_webhook_jwks": "fetched the webhook keys",
    "upload_file": "uploaded a file",
}


def _more_models(call: dict[str, Any], result: Any) -> list[str]:
    """When a search returned one page of several: how many are shown, and how to ask for more
    (the table's own hint names a cursor, which is for a model, not for a person)."""
    page = getattr(result, "artifact", None)
    if not isinstance(page, dict):
        return []
    models = page.get("models")
    if not isinstance(models, list) or not page.get("has_more"):
        return []
    asked = (call.get("args") or {}).get("limit")
    more = min(100, max(2 * len(models), 50))
    if isinstance(asked, int) and asked >= 100:
        return [f"Showing {len(models)} models (the most one search returns); more match: narrow the query."]
    return [f"Showing {len(models)} models; more match: add `limit {more}` to the search to see more "
            "(at most 100)."]


class OfflinePlanner(BaseChatModel):
    """A deterministic chat model for the offline mode: grammar in, tool calls out.

    It only calls tools bound with `bind_tools` (the persona's scope); asked for anything else
    it says which tool is missing. It never guesses: text it cannot parse is answered with what
    it did not understand and a pointer to `/help`. Tokens stream word by word.
    """

    model_name: str = "offline-planner"
    streaming: bool = True
    """Stream tokens through the callbacks (set explicitly so LangChain takes the stream path)."""

    @property
    def _llm_type(self) -> str:
        return "fal-persona-offline-planner"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        """Bind tools the OpenAI way, so `_generate` sees their names in `tools`."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        return super().bind(tools=formatted, **kwargs)

    # -- planning -------------------------------------------------------------------------
    def plan(self, messages: list[BaseMessage], tools: Sequence[dict[str, Any]] | None) -> AIMessage:
        """The next message: a tool call for the next step, or the final answer."""
        bound = {t["function"]["name"] for t in tools or [] if "function" in t}
        text, after = refs.current_turn(messages)
        try:
            steps = parse(text)
        except GrammarError as exc:
            return AIMessage(content=f"{exc}. Nothing was run. Type /help for the commands I know.")
        done = refs.done_calls(after)
        taken = refs.planner_steps_taken(after)
        if done and refs.is_rejected(done[-1][1]):
            return AIMessage(content=self._summary(steps, done, stopped="you rejected the last step"))
        if done and refs.is_error(done[-1][1]):
            return AIMessage(content=self._summary(steps, done, stopped="the last step failed"))
        if taken >= len(steps):
            return AIMessage(content=self._summary(steps, done))
        step = steps[taken]
        if step.tool is None:
            rest = f"\n\n{self._summary(steps, done)}" if done else ""
            return AIMessage(content=HELP_TEXT + rest)
        if step.tool not in bound:
            why = f'this persona may not use {step.tool} (needed for "{step.text}")'
            return AIMessage(content=self._summary(steps, done, stopped=why))
        args = self._resolve(step, messages)
        if args is None:
            why = f'"{step.text}" needs an endpoint and a request id, and no earlier request gives them'
            return AIMessage(content=self._summary(steps, done, stopped=why))
        call_id = f"planner_{len(messages)}_{taken}"
        return AIMessage(content="", tool_calls=[{"name": step.tool, "args": args, "id": call_id, "type": "tool_call"}])

    @staticmethod
    def _resolve(step: Step, messages: list[BaseMessage]) -> dict[str, Any] | None:
        """The step's arguments with references filled from the conversation."""
        if not step.needs_ref:
            return refs.fill_results(dict(step.args), messages)
        ref = refs.request_ref(messages)
        merged = {**ref, **step.args}
        if "endpoint_id" not in merged or "request_id" not in merged:
            return None
        return merged

    @staticmethod
    def _summary(steps: list[Step], done: list[tuple[dict[str, Any], Any]], stopped: str = "") -> str:
        """What was done and what came back, then why it stopped early, if it did."""
        lines: list[str] = []
        if done:
            lines.append("Here is what I did:")
            for i, (call, result) in enumerate(done, 1):
                action = _ACTIONS.get(call["name"], "called a tool")
                status = (" (rejected: not run)" if refs.is_rejected(result)
                          else " (failed)" if refs.is_error(result) else "")
                # Lists (models, prices) are shown whole: the tool already bounds them (100 rows).
                limit = 16000 if call["name"] in _LISTS else 400
                lines.append(f"{i}. I {action} with {call['name']}{status}:\n{refs.short(result, limit)}")
                if call["name"] == "search_models" and not status:
                    lines += _more_models(call, result)
        if stopped:
            remaining = len(steps) - len(done)
            lines.append(f"I stopped: {stopped}." + (f" {remaining} step(s) not run." if remaining > 0 else ""))
        if not lines:
            lines.append("Nothing to do. Type /help for the commands I know.")
        return "\n".join(lines)

    # -- BaseChatModel plumbing ------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        message = self.plan(messages, kwargs.get("tools"))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self, messages: list[BaseMessage], **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        """The planned message as stream chunks: words of text, or one tool-call chunk."""
        message = self.plan(messages, kwargs.get("tools"))
        if message.tool_calls:
            call = message.tool_calls[0]
            chunk = AIMessageChunk(content="", tool_call_chunks=[{
                "name": call["name"], "args": json.dumps(call["args"]), "id": call["id"],
                "index": 0, "type": "tool_call_chunk"}])
            yield ChatGenerationChunk(message=chunk)
            return
        words = str(message.content).split(" ")
        for i, word in enumerate(words):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word if i == 0 else " " + word))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(messages, **kwargs)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, **kwargs):
            yield chunk
