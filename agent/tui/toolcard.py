"""A foldable card per tool call: arguments, a spinner while it runs, summary, full JSON.

A reopened chat's cards are finished before they mount: `light=True` draws them as two plain
lines (the folded title and the summary) and builds the foldable card only when the title is
used (the pointer or the focus on it builds it folded; a click, or Enter, unfolds it),
so a long history mounts a fraction of the widgets.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from textual import events, on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
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


def result_summary(result: Any, content: str) -> str:
    """`2 images`, `1 video`, `1 audio`, `text: ...`, else the first line of what the tool said."""
    from agent.media import find_media, text_result

    media = find_media(result)
    if media:
        kinds = {m.kind for m in media}
        if len(kinds) == 1 and "file" not in kinds:
            kind = kinds.pop()
            plural = "s" if len(media) != 1 and kind != "audio" else ""
            return f"{len(media)} {kind}{plural}"
        return f"{len(media)} file{'s' if len(media) != 1 else ''}"
    text = text_result(result)
    if text is not None:
        return summarize("text: " + text, 60)
    return summarize(content, 60)


def pretty_json(value: Any, limit: int = 20000) -> str:
    """Indented JSON (anything unserialisable as str), capped so a huge result stays cheap."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "\n… (truncated; save the result for all of it)"


class LightTitle(Static, can_focus=True):
    """A light card's folded title, drawn as the Collapsible's title is; a click (or Enter)
    builds the full card unfolded; the pointer or the focus on it builds it folded."""

    BINDINGS = [Binding("enter", "unfold", "Unfold", show=False)]
    ALLOW_SELECT = False
    DEFAULT_CSS = """
    LightTitle {
        width: 1fr;
        height: auto;
        text-wrap: nowrap;  /* the title's own width is its text's: a long one is cut, not wrapped */
        text-overflow: clip;
        padding: 0 0 0 1;  /* its right padding is past a long title's cut, and is $surface anyway */
        background: $surface;
        text-style: $block-cursor-blurred-text-style;
        color: $block-cursor-blurred-foreground;
        pointer: pointer;
        &:hover { background: $block-hover-background; color: $foreground; }
        &:focus {
            text-style: $block-cursor-text-style;
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
    }
    """

    # The card does the work, in its own queue: rebuilding it removes this title (and would
    # end a handler still running here).
    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.action_unfold()

    def action_unfold(self) -> None:
        card = self.parent
        if isinstance(card, ToolCard):
            card.call_later(card.build, expand=True, focus=self.has_focus)

    def on_enter(self, event: events.Enter) -> None:
        card = self.parent  # the pointer's hover look is the real title's: build it, folded
        if isinstance(card, ToolCard):
            card.call_later(card.build)

    def on_focus(self, event: events.Focus) -> None:
        card = self.parent  # so is the focused look: build it, the real title takes the focus
        if isinstance(card, ToolCard):
            card.call_later(card.build, focus=True)


class ToolCard(Vertical):
    """One tool call. The JSON is rendered only when the card is first unfolded."""

    DEFAULT_CSS = """
    ToolCard > .light-summary { height: 1; padding: 0 0 0 2; }
    """

    def __init__(self, call_id: str, name: str, args: dict[str, Any], kind: str = "read", *,
                 light: bool = False) -> None:
        super().__init__(classes=f"toolcard running {kind}")
        self.light = light
        """Drawn as two lines until used (only once it is finished: see the module docstring)."""
        self._building = asyncio.Lock()
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

    def title(self) -> str:
        """The folded card's title: `⚙ search_models(query="flux")`."""
        return f"{KIND_ICON.get(self.kind, '⚙')} {self.tool_name}({short_args(self.args)})"

    def compose(self):
        if self.light and self.done:
            # The Collapsible's folded title line (symbol, a space, the title read as its
            # markup is) and the status row's summary, as two plain widgets.
            yield LightTitle(Content.assemble("▶", " ", Content.from_text(self.title())))
            yield Static(self._line, markup=False, classes="summary light-summary")
            return
        with Collapsible(title=self.title(), collapsed=True):
            yield Static(f"arguments:\n{pretty_json(self.args)}", markup=False, classes="args")
            yield Static("", markup=False, classes="json")
        with Horizontal(classes="status-row"):
            if not self.done:  # a card finished before it mounts (a reopened chat) needs none
                yield LoadingIndicator()
            yield Static("running…", markup=False, classes="summary")

    def on_mount(self) -> None:
        self._composed = True  # children exist from here on (is_mounted is set only after this)
        self._paint()

    async def build(self, *, expand: bool = False, focus: bool = False) -> None:
        """A light card becomes the full, foldable one (a second caller waits for the first);
        then `expand` unfolds it (its JSON shown) and `focus` focuses its title."""
        self.light = False
        async with self._building:
            if self._composed and self.is_attached and self.query(LightTitle):
                await self.recompose()
                self._paint()
        found = self.query(Collapsible)
        if not found:
            return
        if expand:
            found.first().collapsed = False
        if focus:
            found.first().query_one("CollapsibleTitle").focus()

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
        # out of a long chat can still receive its call's end). Classes are set before it
        # mounts too, without a style update: a card finished early mounts in its final look.
        mounted = self._composed and self.is_attached
        if self.done:
            self.remove_class("running", update=mounted)
            self.add_class("error" if self.error else "ok", update=mounted)
        if not mounted:
            return
        if self.done:
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
