"""The persona's MCP servers in the TUI: their state in the header, a chat notice when one stops.

The runtime's hub (`agent.mcp.client.McpHub`) reports a server that dies from its own thread;
`McpWatch` hands each report to the UI loop with `call_soon_threadsafe` (it never waits for the
UI), where it becomes a chat notice and a header refresh. A persona switch can bring another
hub (or none): `follow` re-subscribes, and shows what the new hub said while starting (a server
that did not start). The first hub's start notices are the runtime's, shown at start already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MARKS = {"up": "✓", "starting": "…", "failed": "✗", "dead": "✗", "closed": "-"}


def hub_of(runtime: Any) -> Any:
    """The runtime's MCP hub, or None."""
    return getattr(runtime, "mcp", None) if runtime is not None else None


def states(runtime: Any) -> dict[str, str]:
    """Each MCP server's state (`up`, `failed`, `dead`...), {} without servers."""
    hub = hub_of(runtime)
    if hub is None:
        return {}
    try:
        return dict(hub.status())
    except Exception:  # a header must not fail over a hub's oddity
        log.warning("could not read the MCP servers' state", exc_info=True)
        return {}


def header_label(runtime: Any) -> str:
    """`notes ✓ ghost ✗`: each server and a mark for its state; '' without servers."""
    return " ".join(f"{name} {MARKS.get(state, '?')}" for name, state in states(runtime).items())


def short_label(label: str) -> str:
    """`1/2 up` from a `header_label` (for a narrow header)."""
    marks = label.split()[1::2]
    return f"{marks.count(MARKS['up'])}/{len(marks)} up" if marks else ""


class McpWatch:
    """Follows one app's runtime hub: deaths become chat notices, the header is refreshed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.hub: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._started = False

    def follow(self, hub: Any) -> None:
        """Watch `hub` (the runtime's current one) instead of the one before."""
        if hub is self.hub and self._started:
            return
        first, self._started = not self._started, True
        self.stop()
        self.hub = hub
        if hub is None:
            return
        loop = asyncio.get_running_loop()

        def reported(text: str) -> None:  # on the hub's thread
            try:
                loop.call_soon_threadsafe(self._arrived, hub, text)
            except RuntimeError:  # the UI loop is gone: the app is closing
                pass

        subscribe = getattr(hub, "subscribe", None)
        if callable(subscribe):
            self._unsubscribe = subscribe(reported)
        if not first:  # a hub a persona switch started: say what did not start
            for text in list(getattr(hub, "notices", None) or []):
                self._arrived(hub, str(text))

    def stop(self) -> None:
        """Stop listening (the hub stays as it is)."""
        if self._unsubscribe is not None:
            try:
                self._unsubscribe()
            except Exception:  # a hub already closed
                log.debug("unsubscribing from an MCP hub failed", exc_info=True)
            self._unsubscribe = None

    def _arrived(self, hub: Any, text: str) -> None:
        if hub is not self.hub:  # from a hub a switch has replaced
            return
        self.app.run_worker(self._show(text), group="mcp-notice")

    async def _show(self, text: str) -> None:
        from agent.tui.chat import NoticeMessage

        self.app._refresh_header()
        await self.app.chat.add(NoticeMessage(text, kind="mcp"))


def follow(app: Any) -> None:
    """Follow the app's runtime hub (call after the runtime is built or swapped)."""
    watch = getattr(app, "_mcp_watch", None)
    if watch is None:
        watch = app._mcp_watch = McpWatch(app)
    watch.follow(hub_of(app.runtime))


def unfollow(app: Any) -> None:
    """Stop following (the app is closing)."""
    watch = getattr(app, "_mcp_watch", None)
    if watch is not None:
        watch.stop()
