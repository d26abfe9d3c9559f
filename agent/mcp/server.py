"""`fal-persona mcp`: one persona's fal.ai tools as an MCP server (FastMCP, stdio or HTTP).

FastMCP would derive each tool's schema from a Python signature; here the list and the calls
come from the same LangChain tool objects the chat uses (see `agent.mcp.bridge`), so an MCP
client sees the names, descriptions and input schemas a chat model sees, and every call
passes the chat's guard. Tools carry `readOnlyHint` (read tools) and `destructiveHint`
(cancel) annotations.

Approval (what the persona's `approval` list names: a submit, a cancel) is asked of the client
through MCP elicitation when it declared that capability; otherwise the call is refused
unless the server was started with `allow_spend` (the budget still holds then). A refusal or
a failure comes back as a tool error (`isError`) with the text the chat's model would read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mcp import types
from mcp.server.fastmcp import FastMCP
from pydantic import BaseModel, Field

from agent.core.events import ApprovalRequest, Decision
from agent.mcp.bridge import ToolBridge, ToolSpec, describe, is_error, message_text
from agent.redact import redact_text

APPROVAL_TIMEOUT_S = 300.0
NO_ELICITATION = ("the MCP client cannot be asked (it does not support elicitation) and this server "
                  "was started without --allow-spend")


class Approval(BaseModel):
    """What the client's user answers when asked to approve a call."""

    approve: bool = Field(description="Run this call (true) or not (false)")


def tool_annotations(spec: ToolSpec) -> types.ToolAnnotations:
    """MCP hints from the registry's kind: read tools only look; a cancel undoes work."""
    return types.ToolAnnotations(
        title=spec.name.replace("_", " "),
        readOnlyHint=spec.kind == "read",
        destructiveHint=spec.kind == "destructive",
        idempotentHint=spec.kind == "read",
        openWorldHint=True,
    )


def client_name(session: Any) -> str:
    """The name the client gave in `initialize` (clientInfo), or ''."""
    params = getattr(session, "client_params", None)
    info = getattr(params, "clientInfo", None)
    return str(getattr(info, "name", "") or "")


def can_elicit(session: Any) -> bool:
    """Whether the client declared the elicitation capability."""
    try:
        return bool(session.check_client_capability(
            types.ClientCapabilities(elicitation=types.ElicitationCapability())))
    except Exception:  # an odd session: treat as not able to ask
        return False


class PersonaServer(FastMCP):
    """A FastMCP server whose tools are a `ToolBridge`'s (listed and called through it)."""

    def __init__(self, bridge: ToolBridge, *, allow_spend: bool = False, host: str = "127.0.0.1",
                 port: int = 8000, approval_timeout_s: float = APPROVAL_TIMEOUT_S) -> None:
        persona = bridge.persona
        super().__init__(
            name=f"fal-persona-{persona.name}",
            instructions=(f"fal.ai tools of the fal-persona '{persona.name}' persona"
                          + (f": {persona.description}" if persona.description else "")
                          + ". Submitting costs money and may need approval."),
            host=host, port=port, log_level="WARNING")
        self.bridge = bridge
        self.allow_spend = allow_spend
        self.approval_timeout_s = approval_timeout_s
        self._specs = bridge.specs()

    async def run_stdio_async(self) -> None:
        """Serve over stdin/stdout, read and written by the loop when they are pipes (see
        `agent.mcp.stdio`: no thread hop per message), else as the SDK does."""
        from mcp.server.stdio import stdio_server

        from agent.mcp.stdio import loop_stdio

        async with loop_stdio() as pipes:
            stdin, stdout = pipes if pipes is not None else (None, None)
            async with stdio_server(stdin, stdout) as (read_stream, write_stream):  # type: ignore[arg-type]  # None: the SDK's own stdio
                await self._mcp_server.run(read_stream, write_stream,
                                           self._mcp_server.create_initialization_options())

    async def list_tools(self) -> list[types.Tool]:
        return [types.Tool(name=s.name, description=s.description, inputSchema=s.input_schema,
                           annotations=tool_annotations(s)) for s in self._specs]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:  # type: ignore[override]  # FastMCP passes a CallToolResult through whole
        ctx = self.get_context()
        session = ctx.request_context.session

        async def decide(request: ApprovalRequest) -> Decision:
            if can_elicit(session):
                return await self._elicit(ctx, request)
            if self.allow_spend:
                return Decision(action="approve", reason="--allow-spend")
            return Decision(action="reject", reason=NO_ELICITATION)

        result, content = await self.bridge.call_structured(name, arguments or {}, decide, client=session,
                                                            client_name=client_name(session))
        return types.CallToolResult(content=[types.TextContent(type="text", text=message_text(result))],
                                    structuredContent=content, isError=is_error(result))

    async def _elicit(self, ctx: Any, request: ApprovalRequest) -> Decision:
        """Ask the client's user; anything but an explicit yes (in time) is a no."""
        try:
            async with asyncio.timeout(self.approval_timeout_s):
                answer = await ctx.elicit(describe(request), Approval)
        except TimeoutError:
            return Decision(action="reject", reason=f"no answer within {self.approval_timeout_s:g} s")
        except Exception as exc:  # a failed question never approves
            return Decision(action="reject", reason=f"asking the MCP client failed: {redact_text(str(exc))}")
        if answer.action == "accept" and getattr(answer, "data", None) is not None and answer.data.approve:
            return Decision(action="approve", reason="approved through MCP elicitation")
        return Decision(action="reject", reason="declined" if answer.action != "cancel" else "cancelled")
