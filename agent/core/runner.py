"""`AgentRunner`: one persona's conversation, as a stream of events any UI can render.

The agent is LangChain's `create_agent`, bound to the persona's tools only, with middleware:
malformed calls fed back as errors, model-call and tool-call limits (raising, so a runaway loop
ends the turn with an ErrorEvent), and the guard (scope, budget, approval by interrupt). A turn
runs in a background task; model callbacks and middleware put events on a queue that
`run_turn` yields from, so tokens, progress and approvals arrive while the agent works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

    from agent.core.contracts import Transcript, WebhookListener
    from agent.core.media_inputs import FalInputs
    from agent.personas import Persona
    from agent.settings import Settings

from agent.core.events import ApprovalRequest, Decision, ErrorEvent, Event, Token, TurnEnd
from agent.core.gate import Price, ToolGate, call_quantity
from agent.core.turnlog import TurnLog
from agent.redact import redact_text
from agent.transcript.replay import PendingApproval, Replay
from tools.outcome import failure_artifact, jsonable, message_outcome
from tools.registry import UPLOAD

__all__ = ["Approver", "AgentRunner"]


Approver = Callable[[ApprovalRequest], Awaitable[Decision]]
_DONE = object()


def _text(message: Any) -> str:
    """A message's text, whatever its content shape."""
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


class AgentRunner:
    """Runs turns and slash-command tool calls for one persona and one session.

    `spent_usd` and `budget_left_usd` track the session's money; `session_id` names the
    transcript session. Conversation history carries over from turn to turn. `webhooks`, the
    running webhook listener or None, gives submits that name no webhook its URL.
    """

    def __init__(self, settings: Settings, persona: Persona, tools: list[BaseTool],
                 transcript: Transcript | None = None, model: BaseChatModel | None = None,
                 session_id: str | None = None, *, user: str | None = None,
                 source: str = "tui", webhooks: WebhookListener | None = None,
                 fal: FalInputs | None = None) -> None:
        from agent.core.callbacks import TurnCallbacks
        from agent.core.media_inputs import SubmitInputs
        from agent.core.models import make_model, model_name_for

        self.settings = settings
        self.persona = persona
        self.tools = [t for t in tools if t.name in persona.tools]
        self.model = model if model is not None else make_model(settings, persona)
        self.model_name = (model_name_for(settings, persona) if model is None
                           else str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__))
        user = user or settings.user_name
        if session_id is None:
            session_id = (transcript.new_session(user, persona.name, source=source)
                          if transcript is not None else uuid.uuid4().hex)
        self.session_id: str = session_id
        self.webhooks = webhooks
        self.fal = fal
        # With the fal client, a submit's arguments are checked against the endpoint's schema
        # before approval, and its local files uploaded once approved (agent/core/media_inputs.py).
        self.inputs = (SubmitInputs(fal, may_upload=UPLOAD in {t.name for t in self.tools})
                       if fal is not None else None)
        self._all_tools = {t.name: t for t in tools}  # the guard prices submits with get_pricing
        self.gate = ToolGate(persona, {t.name for t in tools}, price_of=self._price_of)
        self.log = TurnLog(transcript, session_id, user, persona.name)
        self.callbacks = TurnCallbacks(self.log, self.model_name)
        self._graph: Any = None
        self._history: list[Any] = []
        self._turns = 0
        self.pending: list[PendingApproval] = []
        """Approvals a resumed conversation left unanswered (see `run_pending`)."""

    def carry_over(self, previous: AgentRunner) -> None:
        """Continue `previous`'s session: its conversation, turn count and money spent."""
        self._history = list(previous._history)
        self._turns = previous._turns
        self.gate.spent_usd = previous.gate.spent_usd
        self.pending = list(previous.pending)

    def restore(self, replay: Replay) -> None:
        """Go on with a conversation rebuilt from the transcript (agent/transcript/replay.py):
        its history, turn count, spend, and the approvals it left unanswered (`pending`)."""
        self._history = list(replay.messages)
        self._turns = replay.turns
        self.gate.spent_usd = replay.spent_usd
        self.pending = list(replay.pending)

    def run_pending(self, approver: Approver | None) -> AsyncIterator[Event]:
        """Ask again for each approval the app died waiting on; a yes runs the call (a no
        refuses it, as it would have), then the agent goes on with the result. Ends with TurnEnd."""
        return self._consume(lambda: self._drive_pending(approver))

    @property
    def history(self) -> list[Any]:
        """The conversation so far (LangChain messages, newest last); a copy."""
        return list(self._history)

    @property
    def spent_usd(self) -> float:
        """Dollars spent in this session: the cost of each submit that ran."""
        return self.gate.spent_usd

    @property
    def budget_left_usd(self) -> float | None:
        """What the persona may still spend in this session."""
        return self.gate.budget_left_usd

    async def _price_of(self, endpoint: str) -> Price | None:
        """The guard's own price lookup for a submit the session has no price for: the unit
        price through the get_pricing tool, and fal's typical price of one call through
        estimate_pricing (historical_api_price, 1 call). None when no price can be had."""
        priced = await self._lookup("get_pricing", {"endpoint_ids": [endpoint]})
        rows = priced.get("prices") if isinstance(priced, dict) else None
        row = next((r for r in rows or [] if isinstance(r, dict) and r.get("endpoint_id") == endpoint), None)
        unit_price = row.get("unit_price") if row else None
        if not isinstance(unit_price, (int, float)) or isinstance(unit_price, bool):
            unit_price = None
        unit = str(row.get("unit") or "call") if row else None
        per_call = None
        if unit_price is None or call_quantity(unit, {})[2]:  # units a call's arguments may not tell
            estimated = await self._lookup("estimate_pricing", {"estimate_type": "historical_api_price",
                                                               "endpoints": {endpoint: 1}})
            total = estimated.get("total_cost") if isinstance(estimated, dict) else None
            per_call = float(total) if isinstance(total, (int, float)) and not isinstance(total, bool) else None
        if unit_price is not None:
            return Price(endpoint, float(unit_price), unit, "lookup", per_call)
        return Price(endpoint, None, None, "lookup", per_call) if per_call is not None else None

    async def _lookup(self, name: str, args: dict[str, Any]) -> Any:
        """A read tool's artifact (None on any failure), run quietly for the guard."""
        tool = self._all_tools.get(name)
        if tool is None:
            return None
        call = {"name": name, "args": args, "id": f"price_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
        try:
            message = await tool.ainvoke(call)
        except Exception:  # no price is "cost unknown", never a failed turn
            return None
        if not message_outcome(message).ok:
            return None
        return jsonable(getattr(message, "artifact", None))

    def _agent(self) -> Any:
        """The compiled agent graph, built on first use."""
        if self._graph is None:
            from langchain.agents import create_agent
            from langchain.agents.middleware import AgentMiddleware, ModelCallLimitMiddleware, ToolCallLimitMiddleware
            from langgraph.checkpoint.memory import InMemorySaver

            from agent.core.history import DEFAULT_MAX_TOKENS, HistoryTrimMiddleware
            from agent.core.middleware import GuardMiddleware, MalformedCallMiddleware

            middleware: list[AgentMiddleware[Any, Any]] = [
                HistoryTrimMiddleware(getattr(self.settings, "history_max_tokens", DEFAULT_MAX_TOKENS)),
                MalformedCallMiddleware(self.log, self.callbacks.raw_args),
                ModelCallLimitMiddleware(thread_limit=self.settings.max_model_calls, exit_behavior="error"),
                ToolCallLimitMiddleware(thread_limit=self.settings.max_tool_calls, exit_behavior="error"),
                GuardMiddleware(self.gate, self.log, self.webhooks, self.inputs),
            ]
            self._graph = create_agent(self.model, self.tools, system_prompt=self.persona.system_prompt,
                                       middleware=middleware, checkpointer=InMemorySaver())
        return self._graph

    # -- public API -----------------------------------------------------------------------
    async def run_turn(self, text: str, approver: Approver | None) -> AsyncIterator[Event]:
        """One user turn: yields Token/Tool*/ApprovalRequest/ErrorEvent events, then TurnEnd."""
        async for event in self._consume(lambda: self._drive_turn(text, approver)):
            yield event

    async def run_tool(self, name: str, args: dict[str, Any], approver: Approver | None) -> AsyncIterator[Event]:
        """Run one tool directly (a slash command) through the same checks; ends with TurnEnd."""
        async for event in self._consume(lambda: self._drive_tool(name, dict(args or {}), approver)):
            yield event

    # -- plumbing -------------------------------------------------------------------------
    async def _consume(self, make: Callable[[], Awaitable[None]]) -> AsyncIterator[Event]:
        """Run `make()` in a task and yield what it emits; cancel it if the consumer goes away."""
        queue = self.log.start()

        async def body() -> None:
            try:
                await make()
            finally:
                queue.put_nowait(_DONE)

        task = asyncio.create_task(body())
        try:
            while True:
                event = await queue.get()
                if event is _DONE:
                    break
                # What the UI is about to show must already be in the transcript. A token's
                # own row (model_response) only exists once the reply ends, so no row waits
                # for it: the rows then pending are the request, which the timer commits.
                if not isinstance(event, Token):
                    failure = self.log.settle()
                    if failure is not None:
                        yield failure
                yield event
            await task
        finally:
            if not task.done():
                task.cancel()
                try:
                    await task
                except BaseException:  # the task's end is all we wait for
                    pass
            self.log.settle()  # rows no event followed, e.g. a cancelled turn's error

    async def _ask(self, approver: Approver | None, request: ApprovalRequest) -> Decision:
        """The approver's decision; anything but a Decision (or an exception) means reject."""
        if approver is None:
            return Decision(action="reject", reason="no one was there to approve")
        try:
            decision = await approver(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken UI must not approve by accident
            return Decision(action="reject", reason=f"approval failed: {redact_text(str(exc))}")
        if not isinstance(decision, Decision):
            return Decision(action="reject", reason="the approver gave no decision")
        return decision

    async def _drive_turn(self, text: str | None, approver: Approver | None) -> None:
        """The agent loop for one turn, answering interrupts with the approver."""
        from langchain_core.messages import HumanMessage
        from langgraph.types import Command

        self._turns += 1
        config = {"configurable": {"thread_id": f"{self.session_id}:{self._turns}"},
                  "callbacks": [self.callbacks],
                  "recursion_limit": 4 * (self.settings.max_model_calls + self.settings.max_tool_calls) + 20}
        self.callbacks.reset_usage()
        answer = ""
        if text is None:  # going on after a resumed approval: the history ends in its result
            payload: Any = {"messages": list(self._history)}
        else:
            self.log.record("user_prompt", {"text": text})
            if self.pending:  # a resumed chat's open approvals are decided before it goes on
                await self._resolve_pending(approver)
            payload = {"messages": [*self._history, HumanMessage(text)]}
        graph = None
        try:
            graph = self._agent()
            while True:
                interrupts: list[Any] = []
                async for chunk in graph.astream(payload, config, stream_mode="updates"):
                    if isinstance(chunk, dict) and "__interrupt__" in chunk:
                        interrupts.extend(chunk["__interrupt__"])
                if not interrupts:
                    break
                resume = {}
                for intr in interrupts:
                    request = ApprovalRequest(**intr.value)
                    self._asked(request, "model")
                    self.log.emit(request)
                    decision = await self._ask(approver, request)
                    resume[intr.id] = {"action": decision.action, "args": decision.args, "reason": decision.reason}
                payload = Command(resume=resume)
            messages = (await graph.aget_state(config)).values.get("messages", [])
            self._history = list(messages)
            answer = _text(messages[-1]) if messages else ""
            self.log.record("answer", {"text": answer, "spent_usd": self.spent_usd})
        except asyncio.CancelledError:
            self.log.record("error", {"kind": "cancelled", "message": "the turn was cancelled by the user"})
            await self._recover(graph, config)
            raise
        except Exception as exc:  # every failure ends the turn readably
            message = _failure_message(exc, self.settings)
            self.log.emit(ErrorEvent(message, kind=_failure_kind(exc)))
            self.log.record("error", {"kind": _failure_kind(exc), "message": message})
            await self._recover(graph, config)
        finally:
            self._forget(config)
        self.log.emit(TurnEnd(answer=answer, spent_usd=self.spent_usd, usage=dict(self.callbacks.usage)))

    async def _recover(self, graph: Any, config: dict[str, Any]) -> None:
        """Keep what the stopped turn did, answering its dangling tool calls, for the next turn."""
        if graph is None:
            return
        from langchain_core.messages import AIMessage, ToolMessage

        try:
            messages = list((await graph.aget_state(config)).values.get("messages", []))
        except Exception:  # nothing to keep then
            return
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        for call in getattr(last_ai, "tool_calls", None) or []:
            if call.get("id") not in answered:
                messages.append(ToolMessage(content="Not run: the turn was stopped.", name=call["name"],
                                            tool_call_id=call.get("id") or "", status="error",
                                            artifact=failure_artifact("refused", "the turn was stopped")))
        if messages:
            self._history = messages

    def _forget(self, config: dict[str, Any]) -> None:
        """Drop the turn's checkpoints: history lives in `_history`, not in the saver."""
        saver = getattr(self._graph, "checkpointer", None)
        try:
            if saver is not None:
                saver.delete_thread(config["configurable"]["thread_id"])
        except Exception:  # only memory is at stake
            pass

    async def _drive_tool(self, name: str, args: dict[str, Any], approver: Approver | None) -> None:
        """One slash-command tool call, guarded and logged like a model's."""
        from langchain_core.messages import AIMessage

        call = {"name": name, "args": args, "id": f"slash_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
        self.log.record("user_prompt", {"text": f"/{name} {json.dumps(args, default=str)}", "slash": True})
        result = await self._guarded(call, approver, asked="slash")
        content = _text(result)
        self._history += [AIMessage(content="", tool_calls=[call]), result]
        self.log.emit(TurnEnd(answer=content, spent_usd=self.spent_usd))

    async def _guarded(self, call: dict[str, Any], approver: Approver | None, *, asked: str | None) -> Any:
        """Run one call (a slash command's, or a resumed approval's) through the guard, outside
        the agent graph. `asked` names the approval's source to record when one is asked
        (None: it was recorded when first asked, before the app stopped)."""
        from langchain_core.messages import ToolMessage
        from pydantic import ValidationError

        from agent.core.guard import guarded_call

        name = call["name"]
        tools = {t.name: t for t in self.tools}

        async def execute(c: dict[str, Any]) -> Any:
            try:
                return await tools[name].ainvoke({**c, "type": "tool_call"}, config={"callbacks": [self.callbacks]})
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                text = f"Error: invalid arguments for {name}: {problems}"
                return ToolMessage(content=text, name=name, tool_call_id=c["id"], status="error",
                                   artifact=failure_artifact("failed", text, error_type="InputError"))

        async def decide(request: ApprovalRequest) -> Decision:
            if asked is not None:
                self._asked(request, asked)
            self.log.emit(request)
            return await self._ask(approver, request)

        return await guarded_call(self.gate, self.log, call, execute, decide, self.webhooks, self.inputs)

    def _asked(self, request: ApprovalRequest, source: str) -> None:
        """Record that an approval is being asked, before anyone sees it: if the app dies
        before the answer, a resumed chat finds it and asks again (agent/transcript/replay.py)."""
        self.log.record("approval_request", {**dataclasses.asdict(request), "source": source})
        self.log.settle()  # committed now: the approver may put it on screen before the next event

    async def _drive_pending(self, approver: Approver | None) -> None:
        """The pending approvals decided, then the agent's turn goes on from their results
        when any call was the model's."""
        if await self._resolve_pending(approver):
            await self._drive_turn(None, approver)  # emits its own TurnEnd
            return
        self.log.emit(TurnEnd(answer="", spent_usd=self.spent_usd))

    async def _resolve_pending(self, approver: Approver | None) -> bool:
        """Ask each pending approval again and run (or refuse) its call, its result going into
        the history where the call left a gap; True when any call was the model's."""
        from langchain_core.messages import AIMessage

        pending, self.pending = self.pending, []
        model_calls = False
        for item in pending:
            args = dict(item.args)
            if self.webhooks is not None and _loopback_url(args.get("webhook_url")):
                args.pop("webhook_url")  # the stopped app's own listener: this one's is attached
            call = {"name": item.name, "args": args, "id": item.call_id, "type": "tool_call"}
            result = await self._guarded(call, approver, asked=None)
            if item.source == "slash":
                self._history += [AIMessage(content="", tool_calls=[call]), result]
            else:
                self._history.append(result)
                model_calls = True
        return model_calls


def _loopback_url(url: Any) -> bool:
    """True for an http(s) URL on a loopback host (a local listener's)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        return False
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _failure_kind(exc: BaseException) -> str:
    """`limit` for the loop limits, `error` for the rest."""
    name = type(exc).__name__
    return "limit" if name in ("ModelCallLimitExceededError", "ToolCallLimitExceededError",
                               "GraphRecursionError") else "error"


def _failure_message(exc: BaseException, settings: Any) -> str:
    """A readable, secret-free line about why the turn stopped."""
    name = type(exc).__name__
    if name == "ModelCallLimitExceededError":
        return (f"Stopped: the model was called {settings.max_model_calls} times in this turn, the "
                "limit (FAL_PERSONA_MAX_MODEL_CALLS). The work so far is kept.")
    if name == "ToolCallLimitExceededError":
        return (f"Stopped: this turn asked for more than {settings.max_tool_calls} tool calls, the "
                "limit (FAL_PERSONA_MAX_TOOL_CALLS). The work so far is kept.")
    if name == "GraphRecursionError":
        return "Stopped: the agent went round too many times in this turn."
    # langchain-openai wraps openai's errors in subclasses; match on the whole MRO.
    hint = next((_MODEL_ERROR_HINTS[c.__name__] for c in type(exc).__mro__
                 if c.__name__ in _MODEL_ERROR_HINTS), None)
    if hint:
        server = getattr(settings, "openai_base_url", None) or "the OpenAI API"
        return redact_text(f"The turn failed: {hint.format(server=server)} ({name}: {exc})")
    return redact_text(f"The turn failed: {name}: {exc}")


# The openai package's errors, by class name (so this module need not import it), with what to do.
_MODEL_ERROR_HINTS = {
    "APIConnectionError": "could not reach the model server at {server}; check OPENAI_BASE_URL "
                          "and that the server is running",
    "APITimeoutError": "the model server at {server} did not answer in time",
    "AuthenticationError": "the model server at {server} refused the key; check OPENAI_API_KEY",
    "PermissionDeniedError": "the model server at {server} refused this request for the key",
    "NotFoundError": "the model server at {server} does not know this model; check "
                     "FAL_PERSONA_MODEL or the persona's model",
    "RateLimitError": "the model server at {server} is rate limiting; wait a little and try again",
    "ModelStreamCutError": "the model server at {server} cut its reply off before the end; the "
                           "partial reply was not used",
}
