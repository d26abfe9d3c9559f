"""Reaching one MCP server a persona lists: its session (stdio or streamable HTTP) and the
reasons a server failed, told in one secret-free line.

A stdio server's stderr goes to `<data dir>/logs/mcp-<name>.log`, not to the terminal the TUI
draws on. `${VAR}` in a server's env and headers is taken from our environment.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from agent.mcp.config import McpServerSpec
from agent.redact import redact_text

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


def session_lost(exc: BaseException) -> bool:
    """Whether `exc` means the session is gone (vs. a JSON-RPC error the server answered with)."""
    from mcp.shared.exceptions import McpError
    from mcp.types import CONNECTION_CLOSED

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpError):
        return exc.error.code == CONNECTION_CLOSED
    return True


def errlog(spec: McpServerSpec, log_dir: Path | None) -> TextIO:
    """Where a stdio server's stderr goes (the caller closes it)."""
    if log_dir is None:
        return open(os.devnull, "w", encoding="utf-8")  # closed by the caller
    log_dir.mkdir(parents=True, exist_ok=True)
    return open(log_dir / f"mcp-{spec.name}.log", "a", encoding="utf-8")


@contextlib.asynccontextmanager
async def open_session(spec: McpServerSpec, log_dir: Path | None) -> AsyncIterator[Any]:
    """An (uninitialised) `mcp.ClientSession` to `spec`'s server."""
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
    with errlog(spec, log_dir) as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            yield session
