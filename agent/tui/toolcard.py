"""A foldable card per tool call: arguments, a spinner while it runs, summary, full JSON."""

from __future__ import annotations

import json
import time
from typing import Any

from textual import on
from textual.containers import Horizontal, Vertical
from textual.widgets import Collapsible, LoadingIndicator, Static

KIND_ICON = {"read": "⚙", "spend": "$", "destructive": "✖"}


def short_args(args: dict[str, Any], limit: int = 70) -> str:
    """`k=v, ...` on one line, cut to `limit` characters."""
    text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in args.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize(content: str, limit: int = 160) -> str:
    """The first non-empty line of the tool's content, cut to `limit`."""
    for line in (content or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return "(no output)"


def pretty_json(value: Any, limit: int = 20000) -> str:
    """Indented JSON (anything unserialisable as str), capped so a huge result stays cheap."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "\n… (truncated; save the result for all of it)"


class ToolCard(Vertical):
    """One tool call. The JSON is rendered only when the card is first unfolded."""

    def __init__(self, call_id: str, name: str, args: dict[str, Any], kind: str = "read") -> None:
        super().__init__(classes=f"toolcard running {kind}")
        self.call_id, self.tool_name, self.args, self.kind = call_id, name, dict(args), kind
        self.result: Any = None
        self.content = ""
        self.error = False
        self.done = False
        self.duration_s: float | None = None
        self.started = time.monotonic()
        self._line = "running…"
        self._composed = False
        self._json_shown = False

    def compose(self):
        icon = KIND_ICON.get(self.kind, "⚙")
        with Collapsible(title=f"{icon} {self.tool_name}({short_args(self.args)})", collapsed=True):
            yield Static(f"arguments:\n{pretty_json(self.args)}", markup=False, classes="args")
            yield Static("", markup=False, classes="json")
        with Horizontal(classes="status-row"):
            if not self.done:  # a card finished before it mounts (a reopened chat) needs none
                yield LoadingIndicator()
            yield Static("running…", markup=False, classes="summary")

    def on_mount(self) -> None:
        self._composed = True  # children exist from here on (is_mounted is set only after this)
        self._paint()

    def progress(self, text: str) -> None:
        """Show a live update (queue position, a log line) while running."""
        if not self.done:
            self._line = text
            self._paint()

    def finish(self, content: str, artifact: Any, error: bool, duration_s: float) -> None:
        """Stop the spinner and show the outcome and timing."""
        self.done, self.content, self.result, self.error = True, content, artifact, error
        self.duration_s = duration_s
        mark = "✗" if error else "✓"
        self._line = f"{mark} {summarize(content)}  ·  {duration_s:.2f} s"
        self._paint()

    def stop(self, why: str) -> None:
        """The turn was stopped while this call ran: say so, with the time it really ran."""
        self.finish(why, None, True, time.monotonic() - self.started)

    def _paint(self) -> None:
        # State lives in attributes; widgets are touched only while mounted (a card folded
        # out of a long chat can still receive its call's end).
        if not (self._composed and self.is_attached):
            return
        if self.done:
            self.remove_class("running")
            self.add_class("error" if self.error else "ok")
            for spinner in self.query(LoadingIndicator):
                spinner.remove()
        self.query_one(".summary", Static).update(self._line)
        if self._json_shown:
            self._render_json()

    def _render_json(self) -> None:
        body = self.result if self.result is not None else self.content
        self.query_one(".json", Static).update(f"result:\n{pretty_json(body)}" if self.done else "")

    @on(Collapsible.Expanded)
    def _expanded(self) -> None:
        if not self._json_shown:
            self._json_shown = True
            self._render_json()
