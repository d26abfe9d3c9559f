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
artifact), never an exception. A stdio server's stderr goes to `<data dir>/logs/mcp-<name>.log`,
not to the terminal the TUI draws on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from agent.mcp.config import McpServerSpec
from agent.redact import redact_text
from tools.outcome import failure_artifact

PING_EVERY_S = 10.0
PING_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 10.0
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Result = tuple[str, dict[str, Any]]


def expand(value: str) -> str:
    """`${VAR}` from our environment (an unset one stays as written)."""
    return _VAR_RE.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)


def reason_of(exc: BaseException) -> str:
    """A one-line, secret-free reason, looking inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if type(exc).__name__ == "McpError" and "connection closed" in str(exc).lower():
        return "it closed the connection; the process may have exited"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and getattr(exc, "filename", None):
        text = f"{exc.strerror}: {exc.filename}"
    return redact_text(str(text).splitlines()[0] if str(text) else type(exc).__name__)


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


def _session_lost(exc: BaseException) -> bool:
    """Whether `exc` means the session is gone (vs. a JSON-RPC error the server answered with)."""
    from mcp.shared.exceptions import McpError
    from mcp.types import CONNECTION_CLOSED

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpError):
        return exc.error.code == CONNECTION_CLOSED
    return True


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
    @contextlib.asynccontextmanager
    async def _open(self, spec: McpServerSpec) -> AsyncIterator[Any]:
        """An (uninitialised) ClientSession to `spec`'s server."""
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        if spec.command is None:
            from langchain_mcp_adapters.client import MultiServerMCPClient

            client = MultiServerMCPClient({spec.name: {
                "transport": "streamable_http", "url": spec.url or "",
                "headers": {k: expand(v) for k, v in spec.headers.items()}}})
            async with client.session(spec.name, auto_initialize=False) as session:
                yield session
            return
        params = StdioServerParameters(command=spec.command, args=list(spec.args),
                                       env={k: expand(v) for k, v in spec.env.items()} or None,
                                       cwd=spec.cwd)
        with self._errlog(spec) as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                yield session

    def _errlog(self, spec: McpServerSpec) -> Any:
        if self.log_dir is None:
            return open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed by the with
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"mcp-{spec.name}.log", "a", encoding="utf-8")  # noqa: SIM115

    async def _serve(self, srv: ServerState) -> None:
        from langchain_mcp_adapters.tools import load_mcp_tools

        spec = srv.spec
        srv.wake = asyncio.Event()
        try:
            async with self._open(spec) as session:
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
        except BaseException as exc:  # noqa: BLE001 - the server's end, whatever it was
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
            except Exception:  # noqa: BLE001 - a broken listener must not hide the rest
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
        return StructuredTool(name=inner.name, description=inner.description or inner.name,
                              args_schema=inner.args_schema, coroutine=coroutine,
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
        except Exception as exc:  # noqa: BLE001 - below: a refusal by the server, or a lost session
            if not _session_lost(exc):
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


def attach(persona: Any, tools: list[BaseTool], *, log_dir: Path | None = None) -> tuple[McpHub, Any, list[BaseTool]]:
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
    return hub, extended, [*tools, *hub.tools]
