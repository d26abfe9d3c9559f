"""A persona's MCP servers joined to its tools, and switched with the persona.

`attach` starts the servers a persona file lists (`McpHub`) and returns the persona with their
tools in scope. `follow_persona` is what a persona switch does: the servers of the persona
left are stopped and their tools dropped, the new persona's are started; switching to the
persona whose servers already run keeps them (and their sessions) as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool

from agent.mcp.client import McpHub

if TYPE_CHECKING:
    from agent.personas import Persona


def attach(persona: Persona, tools: list[BaseTool], *,
           log_dir: Path | None = None) -> tuple[McpHub, Persona, list[BaseTool]]:
    """Start `persona`'s MCP servers; (hub, the persona with their tools in scope, all tools).

    The returned persona lists the servers' tools in `tools` (and in `approval` where its
    patterns ask), so the runner binds them and the guard scopes and approves them like the
    fal tools. It is a copy made without re-validation: only known fal tools pass a persona
    file's own `tools` list. Never raises for a server; `hub.notices` says what is missing."""
    if log_dir is None:
        from agent.locations import home

        log_dir = home() / "logs"
    hub = McpHub(list(persona.mcp_servers), log_dir=log_dir).start({t.name for t in tools})
    names = [t.name for t in hub.tools]
    extended = persona.model_copy(update={
        "tools": [*persona.tools, *names],
        "approval": [*(persona.approval or []), *hub.approval]})
    hub.persona, hub.extended = persona, extended
    return hub, extended, [*tools, *hub.tools]


def follow_persona(hub: McpHub | None, persona: Persona, tools: list[BaseTool], *,
                   log_dir: Path | None = None) -> tuple[McpHub | None, Persona, list[BaseTool]]:
    """The MCP side of switching to `persona` (as its file says): (its hub or None, the persona
    with its servers' tools, every tool). Blocks while the new servers start (each bounded by
    its `start_timeout_s`): call it off the UI's loop."""
    if hub is not None and hub.persona is not None and hub.extended is not None and hub.persona.name == persona.name:
        return hub, hub.extended, tools
    if hub is not None:
        dropped = {id(t) for t in hub.tools}
        tools = [t for t in tools if id(t) not in dropped]
        hub.close()
    if not persona.mcp_servers:
        return None, persona, tools
    return attach(persona, tools, log_dir=log_dir)
