"""A persona's MCP servers as LangChain tools (`[[mcp_servers]]`, see `agent.mcp.config`).

`McpHub` keeps one session per server on a loop of its own, in a background thread, so the
sessions outlive any one turn and do not care which loop the chat runs on (the TUI's, `ask`'s,
a test's). Each server's tools are loaded with `langchain-mcp-adapters` (`load_mcp_tools`,
prefixed `<server>_`), filtered by the persona's patterns, and wrapped so a call hops to the
hub's loop and back, bounded by the server's `call_timeout_s`.

A server that does not start within `start_timeout_s` (a missing command, a crash, a URL that
does not answer) is left out and said so in `notices`; the persona keeps its other tools. One
that dies later (noticed on the next call, or by the ping every `PING_EVERY_S`) is reported
through `on_notice`, and its tools then answer with a typed error (`McpServerDown` in the
artifact), never an exception. Reaching a server (stdio or HTTP) is `agent.mcp.connect`'s;
starting a persona's servers, and switching them with the persona, `agent.mcp.attach`'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool

from agent.mcp.config import McpServerSpec
from agent.mcp.connect import open_session, reason_of, session_lost
from tools.outcome import failure_artifact

if TYPE_CHECKING:
    from agent.personas import Persona

PING_EVERY_S = 10.0
PING_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0
Result = tuple[str, dict[str, Any]]


def tool_kind(tool: BaseTool) -> str:
    """read (its server says it only reads), destructive (says it destroys) or external."""
    meta = tool.metadata or {}
    if meta.get("readOnlyHint") is True:
        return "read"
    return "destructive" if meta.get("destructiveHint") is True else "external"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict):
            parts.append(block.get("text") if block.get("type") == "text" else f"[{block.get('type', 'data')}]")
        else:
            parts.append(str(block))
    return "\n".join(p for p in parts if p)


@dataclass
class ServerState:
    """One server's life: starting, up, failed (never started), dead, or closed."""

    spec: McpServerSpec
    state: str = "starting"
    reason: str = ""
    tools: list[BaseTool] = field(default_factory=list)
    """The adapters' tools, bound to this server's session (run them on the hub's loop only)."""
    settled: threading.Event = field(default_factory=threading.Event)
    wake: asyncio.Event | None = None
    calls: set[asyncio.Task[Any]] = field(default_factory=set)
    future: concurrent.futures.Future[None] | None = None


class McpHub:
    """The MCP servers of one persona, each in a long-lived session on a background loop.

    `start()` blocks until every server is up or has failed (each bounded by its
    `start_timeout_s`); then `tools`, `approval`, `kinds` and `notices` describe what the
    persona gets. `close()` ends the sessions (stdio servers are stopped) and the thread.
    """

    def __init__(self, specs: list[McpServerSpec], *, log_dir: Path | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.servers = {s.name: ServerState(s) for s in specs}
        self.log_dir = log_dir
        self.notices: list[str] = []
        self._listeners: list[Callable[[str], None]] = [on_notice] if on_notice else []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.tools: list[BaseTool] = []
        self.approval: list[str] = []
        self.kinds: dict[str, str] = {}
        self.persona: Persona | None = None
        """The persona (as its file says) whose servers these are, and that persona with
        their tools in scope (`extended`); set by `agent.mcp.attach.attach`."""
        self.extended: Persona | None = None

    # -- life ---------------------------------------------------------------------------------
    def start(self, reserved: set[str] | frozenset[str] = frozenset()) -> McpHub:
        """Start every server and wait (bounded) for each; `reserved` names may not be taken."""
        if not self.servers:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fal-persona-mcp", daemon=True)
        self._thread.start()
        ready.wait(5.0)
        for srv in self.servers.values():
            srv.future = asyncio.run_coroutine_threadsafe(self._serve(srv), loop)
        for srv in self.servers.values():
            if not srv.settled.wait(srv.spec.start_timeout_s + 5.0):
                srv.state, srv.reason = "failed", "it did not answer in time"
                self._report(self._failed_text(srv))
        self._collect(set(reserved))
        return self

    def subscribe(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener(text)` (from the hub's thread) when a server dies; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """End every session and the hub's thread, within `timeout` seconds (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for srv in self.servers.values():
            if srv.state in ("up", "starting"):
                srv.state = "closed"
            if srv.wake is not None:
                loop.call_soon_threadsafe(srv.wake.set)
        futures = [s.future for s in self.servers.values() if s.future is not None]
        concurrent.futures.wait(futures, timeout=timeout)
        for fut in futures:
            fut.cancel()
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, str]:
        """Each server's state (`up`, `failed`, `dead`, `closed`, `starting`)."""
        return {name: srv.state for name, srv in self.servers.items()}

    # -- the servers' own task ----------------------------------------------------------------
    async def _serve(self, srv: ServerState) -> None:
        from langchain_mcp_adapters.tools import load_mcp_tools

        spec = srv.spec
        srv.wake = asyncio.Event()
        try:
            async with open_session(spec, self.log_dir) as session:
                async with asyncio.timeout(spec.start_timeout_s):
                    await session.initialize()
                    srv.tools = await load_mcp_tools(session, server_name=spec.name, tool_name_prefix=True)
                if srv.state == "starting":
                    srv.state = "up"
                srv.settled.set()
                while srv.state == "up":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(srv.wake.wait(), PING_EVERY_S)
                    srv.wake.clear()
                    if srv.state == "up":
                        async with asyncio.timeout(PING_TIMEOUT_S):
                            await session.send_ping()
            if srv.state == "up":
                raise ConnectionError("the server ended the session")
        except BaseException as exc:  # the server's end, whatever it was
            self._ended(srv, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            srv.settled.set()
            for task in list(srv.calls):
                task.cancel()

    def _ended(self, srv: ServerState, exc: BaseException) -> None:
        if srv.state == "starting":
            srv.state, srv.reason = "failed", reason_of(exc)
            self._report(self._failed_text(srv))
        elif srv.state == "up":
            srv.state, srv.reason = "dead", srv.reason or reason_of(exc)
            self._report(f"MCP server {srv.spec.name} stopped ({srv.reason}); its tools now answer "
                         "with an error, the persona's other tools still work.")

    def _failed_text(self, srv: ServerState) -> str:
        return (f"MCP server {srv.spec.name} did not start ({srv.reason}); the persona goes on "
                "without its tools.")

    def _report(self, text: str) -> None:
        self.notices.append(text)
        for listener in list(self._listeners):
            try:
                listener(text)
            except Exception:  # a broken listener must not hide the rest
                pass

    # -- tools ------------------------------------------------------------------------------------
    def _collect(self, reserved: set[str]) -> None:
        """The wrapped tools of the servers that are up, in scope, named without a clash."""
        for srv in self.servers.values():
            if srv.state != "up":
                continue
            prefix = f"{srv.spec.name}_"
            for inner in srv.tools:
                own = inner.name.removeprefix(prefix)
                if not srv.spec.wants(own):
                    continue
                if inner.name in reserved:
                    self.notices.append(f"MCP server {srv.spec.name}: tool {own} left out, its name "
                                        f"{inner.name} is taken.")
                    continue
                reserved.add(inner.name)
                self.tools.append(self._wrap(srv, inner))
                self.kinds[inner.name] = tool_kind(inner)
                if srv.spec.needs_approval(own):
                    self.approval.append(inner.name)

    def _wrap(self, srv: ServerState, inner: BaseTool) -> BaseTool:
        async def coroutine(**kwargs: Any) -> Result:
            return await self.call(srv, inner, kwargs)

        kind = tool_kind(inner)
        schema = inner.args_schema if inner.args_schema is not None else {"type": "object", "properties": {}}
        return StructuredTool(name=inner.name, description=inner.description or inner.name,
                              args_schema=schema, coroutine=coroutine,
                              response_format="content_and_artifact", tags=["mcp", kind],
                              metadata={"kind": kind, "mcp_server": srv.spec.name})

    def _down(self, srv: ServerState, name: str, *, during: bool = False) -> Result:
        why = srv.reason or srv.state
        what = (f"{name} failed: the MCP server {srv.spec.name} stopped during the call" if during
                else f"{name} was not run: the MCP server {srv.spec.name} is not running")
        text = (f"Error: {what} ({why}). Its tools cannot be used now; carry on without them "
                "or ask the user.")
        return text, failure_artifact("failed", text, error_type="McpServerDown", server=srv.spec.name)

    async def call(self, srv: ServerState, inner: BaseTool, args: dict[str, Any]) -> Result:
        """Run `inner` on the hub's loop; every failure is a (text, error artifact) answer."""
        loop = self._loop
        if srv.state != "up" or loop is None:
            return self._down(srv, inner.name)
        future = asyncio.run_coroutine_threadsafe(self._call_on_hub(srv, inner, args), loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), srv.spec.call_timeout_s)
        except TimeoutError:
            text = (f"Error: {inner.name} failed: the MCP server {srv.spec.name} did not answer within "
                    f"{srv.spec.call_timeout_s:g} s.")
            return text, failure_artifact("failed", text, error_type="McpTimeout", server=srv.spec.name)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def _call_on_hub(self, srv: ServerState, inner: BaseTool, args: dict[str, Any]) -> Result:
        task = asyncio.current_task()
        if task is not None:
            srv.calls.add(task)
        try:
            message = await inner.ainvoke({"name": inner.name, "args": args, "id": "mcp_call",
                                           "type": "tool_call"})
        except asyncio.CancelledError:
            if srv.state != "up":  # cancelled because the server went away
                return self._down(srv, inner.name, during=True)
            raise
        except Exception as exc:  # below: a refusal by the server, or a lost session
            if not session_lost(exc):
                shown = f"Error: {inner.name} failed: {reason_of(exc)}"
                return shown, failure_artifact("failed", shown, error_type="McpError", server=srv.spec.name)
            srv.reason = reason_of(exc)
            if srv.wake is not None:
                srv.wake.set()  # the serve task pings now and reports the death
            if srv.state == "up":
                srv.state = "dead"
                self._report(f"MCP server {srv.spec.name} stopped ({srv.reason}); its tools now answer "
                             "with an error, the persona's other tools still work.")
            return self._down(srv, inner.name, during=True)
        finally:
            if task is not None:
                srv.calls.discard(task)
        text = _text_of(getattr(message, "content", ""))
        if getattr(message, "status", None) == "error":
            shown = f"Error: {inner.name} failed: {text or 'the MCP tool reported an error'}"
            return shown, failure_artifact("failed", shown, error_type="McpToolError", server=srv.spec.name)
        artifact = getattr(message, "artifact", None) or {}
        data = artifact.get("structured_content") if isinstance(artifact, dict) else None
        return text, {"server": srv.spec.name, "tool": inner.name, "structured_content": data}
