"""The seam between an MCP server and the session core: one persona's tools, guarded.

`ToolBridge` lists a runner's tools as MCP sees them (name, description, the JSON schema the
chat model is shown, read-only/destructive hints from the registry's kinds) and runs a call
through `agent.core.guard.guarded_call`, the very function a chat's tool calls and slash
commands pass: scope refusal, submit pricing, budget, approval, transcript rows. Only the
approver differs: the MCP server supplies it per call (elicitation, `--allow-spend`, or no).

The budget belongs to the server process: every client of one `fal-persona mcp` shares the
runner's `ToolGate`, so reconnecting does not reset what was spent. Each client connection
gets a transcript session of its own (source `mcp`, user = the client's name).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from agent.core.events import ApprovalRequest, Decision
from agent.core.gate import money
from agent.core.guard import guarded_call
from agent.core.turnlog import TurnLog
from tools.outcome import failure_artifact, jsonable, message_outcome
from tools.registry import TOOL_KINDS

Decide = Callable[[ApprovalRequest], Awaitable[Decision]]
MCP_SOURCE = "mcp"


@dataclass(frozen=True)
class ToolSpec:
    """One tool as an MCP server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    kind: str
    """read, spend, destructive, upload (fal tools); read, destructive, external (MCP servers')."""


def input_schema(tool: BaseTool) -> dict[str, Any]:
    """The JSON schema of `tool`'s arguments exactly as a chat model is shown it."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    params = convert_to_openai_tool(tool)["function"].get("parameters") or {}
    return {"type": "object", "properties": {}, **params}


def tool_specs(tools: Sequence[BaseTool]) -> list[ToolSpec]:
    """The MCP view of `tools`, in their order."""
    return [ToolSpec(t.name, t.description, input_schema(t), kind_of(t)) for t in tools]


def kind_of(tool: BaseTool) -> str:
    """The registry's kind of a fal tool; else the kind the tool carries (an MCP server's)."""
    known = TOOL_KINDS.get(tool.name)
    return known or str((tool.metadata or {}).get("kind") or "external")


def message_text(message: Any) -> str:
    """A ToolMessage's text, whatever its content shape."""
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


def describe(request: ApprovalRequest) -> str:
    """What a person is asked to approve: the call, what it costs, what is left."""
    lines = [f"fal-persona asks: run the {request.kind} tool {request.name}?"]
    endpoint = request.args.get("endpoint_id")
    if endpoint:
        lines.append(f"Endpoint: {endpoint}")
    if request.name == "submit_queue_request":
        cost = "unknown" if request.estimate_usd is None else money(request.estimate_usd)
        basis = f" ({request.cost_basis})" if request.cost_basis and request.estimate_usd is not None else ""
        lines.append(f"Cost of this call: {cost}{basis}")
    if request.budget_left_usd is not None:
        lines.append(f"Budget left: {money(request.budget_left_usd)}")
    return "\n".join(lines)


class CallLog(TurnLog):
    """One MCP call's log; it keeps the artifact of the call's result row, which the guard has
    made plain JSON already (`jsonable`), so the reply's structured content is not converted
    twice. The row and the reply only read it."""

    result_artifact: Any = None

    def record(self, kind: str, data: dict[str, Any], duration_s: float | None = None) -> None:
        if kind in ("tool_result", "tool_error") and "artifact" in data:
            self.result_artifact = data["artifact"]
        super().record(kind, data, duration_s)


class ToolBridge:
    """A runner's tools behind the session guard, for any number of MCP client connections.

    `runner` is an `agent.core.runner.AgentRunner` (its persona, scoped tools and gate are
    used, never its model); `transcript` the session's `TranscriptStore` (or None).
    """

    def __init__(self, runner: Any, transcript: Any) -> None:
        self.runner = runner
        self.transcript = transcript
        self.persona = runner.persona
        self.gate = runner.gate
        self.tools: dict[str, BaseTool] = {t.name: t for t in runner.tools}
        self._sessions: weakref.WeakKeyDictionary[Any, tuple[str, str]] = weakref.WeakKeyDictionary()
        self._fallback: dict[int, tuple[str, str]] = {}

    def specs(self) -> list[ToolSpec]:
        """The persona's tools (an analyst's list has no submit or cancel)."""
        return tool_specs(list(self.tools.values()))

    def session_of(self, client: Any, client_name: str) -> tuple[str, str]:
        """(transcript session id, user) for one client connection, made on its first call."""
        try:
            known = self._sessions.get(client)
        except TypeError:  # not weak-referenceable: key it by identity
            known = self._fallback.get(id(client))
        if known is not None:
            return known
        user = client_name or "mcp-client"
        sid = (self.transcript.new_session(user, self.persona.name, source=MCP_SOURCE)
               if self.transcript is not None else uuid.uuid4().hex)
        try:
            self._sessions[client] = (sid, user)
        except TypeError:
            self._fallback[id(client)] = (sid, user)
        return sid, user

    async def call(self, name: str, args: dict[str, Any], decide: Decide, *, client: Any = None,
                   client_name: str = "") -> ToolMessage:
        """Run one call through the guard; always a ToolMessage (errors have status "error")."""
        message, _ = await self.call_structured(name, args, decide, client=client, client_name=client_name)
        return message

    async def call_structured(self, name: str, args: dict[str, Any], decide: Decide, *,
                              client: Any = None, client_name: str = "",
                              ) -> tuple[ToolMessage, dict[str, Any] | None]:
        """`call`, and its artifact as a JSON object when it is one (MCP's structuredContent),
        taken from the result row the guard made (plain JSON already: converted once)."""
        session_id, user = self.session_of(client if client is not None else self, client_name)
        log = CallLog(self.transcript, session_id, user, self.persona.name)
        log.start()  # on this loop, so the rows of one call share a commit ...
        log.queue = None  # ... but no one reads its events: dropped unbuilt
        call = {"name": name, "args": dict(args or {}), "id": f"mcp_{uuid.uuid4().hex[:12]}",
                "type": "tool_call"}
        try:
            result = await guarded_call(self.gate, log, call, self._execute, decide)
        finally:
            log.settle()
        plain = log.result_artifact if log.result_artifact is not None else jsonable(
            getattr(result, "artifact", None))
        return result, plain if isinstance(plain, dict) else None

    async def _execute(self, call: dict[str, Any]) -> ToolMessage:
        name = call["name"]
        try:
            result = await self.tools[name].ainvoke({**call, "type": "tool_call"})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            text = f"Error: invalid arguments for {name}: {problems}"
            return ToolMessage(content=text, name=name, tool_call_id=call["id"], status="error",
                               artifact=failure_artifact("failed", text, error_type="InputError"))
        return result


def is_error(message: ToolMessage) -> bool:
    """Whether a call did not do what it was asked (refused, rejected, failed)."""
    return not message_outcome(message).ok


def structured(message: ToolMessage) -> dict[str, Any] | None:
    """The artifact as a JSON object, when it is one (MCP's structuredContent)."""
    data = jsonable(getattr(message, "artifact", None))
    return data if isinstance(data, dict) else None
