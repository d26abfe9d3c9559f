"""The chat log: message widgets and a scroll view that keeps only the newest ones mounted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Markdown, Static

from agent.tui.mdtext import as_markdown, hard_breaks

if TYPE_CHECKING:
    from textual.widgets.markdown import MarkdownStream

DEFAULT_MAX_MOUNTED = 120


class UserMessage(Static):
    """What the user sent (shown verbatim, never as markup)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="message user")


class NoticeMessage(Static):
    """A system notice: mode, persona switches, webhook arrivals, cancellations."""

    def __init__(self, text: str, *, kind: str = "info") -> None:
        super().__init__(text, markup=False, classes=f"message notice {kind}")


class ErrorMessage(Static):
    """A readable error; the text has already been stripped of secrets by the runner."""

    def __init__(self, text: str) -> None:
        super().__init__(f"⚠ {text}", markup=False, classes="message error")


class AnswerMessage(Markdown):
    """The assistant's answer, streamed in as Markdown fragments, then shown as written
    (`agent.tui.mdtext.as_markdown`: placeholders kept, JSON in code blocks)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(as_markdown(text), classes="message answer")
        self._stream: MarkdownStream | None = None
        self.text = text

    async def stream(self, fragment: str) -> None:
        """Add streamed text; MarkdownStream batches re-renders when tokens arrive fast."""
        self.text += fragment
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
        await self._stream.write(hard_breaks(fragment.replace("<", "\\<")))

    async def finish(self) -> None:
        """Flush and stop the stream, then render the whole answer as written."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
            if self.is_attached:
                await self.update(as_markdown(self.text))


class EarlierMessages(Static):
    """Stands in for messages unmounted to keep long sessions fast."""

    def __init__(self) -> None:
        super().__init__("", classes="earlier")
        self.display = False


class NewOutputMarker(Static):
    """Under the chat while the user has scrolled up and new output arrived below."""

    def __init__(self) -> None:
        super().__init__("▼ new output below · PageDown or scroll to the end to follow", id="new-output")
        self.display = False


class ChatView(VerticalScroll):
    """The conversation. Only the newest `max_mounted` messages stay mounted; older ones are
    counted in a one-line placeholder (the transcript keeps them all), so a 2,000-message
    session scrolls and lays out like a short one.

    It follows new output while the view is at the end; once the user scrolls up it stays
    put and `marker` says that more arrived, until the view is back at the end."""

    def __init__(self, max_mounted: int = DEFAULT_MAX_MOUNTED, **kw) -> None:
        super().__init__(**kw)
        self.max_mounted = max_mounted
        self.folded = 0
        self._earlier = EarlierMessages()
        self.marker = NewOutputMarker()
        self.following = True

    def compose(self):
        yield self._earlier

    def on_mount(self) -> None:
        self.anchor()
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def at_end(self) -> bool:
        """True when the view shows the last line."""
        return self.scroll_y >= self.max_scroll_y - 1

    def _scrolled(self, _old: float, _new: float) -> None:
        if self.at_end():
            self.following = True
            self.marker.display = False
        elif self.max_scroll_y > 0 and _new < _old:
            self.following = False  # the user moved up: stop pulling the view down

    def follow_output(self) -> None:
        """After new content: keep up with it, or say it is there."""
        if self.following:
            self.scroll_end(animate=False, immediate=False)
        else:
            self.marker.display = True

    @property
    def messages(self) -> list[Widget]:
        """The mounted message widgets, oldest first."""
        return [w for w in self.children if w is not self._earlier]

    async def add(self, widget: Widget) -> Widget:
        """Mount a message at the bottom and fold the oldest away past the cap."""
        await self.mount(widget)
        extra = len(self.children) - 1 - self.max_mounted
        if extra > 0:
            old = self.messages[:extra]
            self.folded += len(old)
            await self.remove_children(old)
            self._earlier.update(
                f"▲ {self.folded:,} earlier messages folded away "
                "(the transcript keeps them: ctrl+t to browse)"
            )
            self._earlier.display = True
        self.follow_output()
        return widget

    async def add_history(self, widgets: list[Widget], folded: int = 0) -> None:
        """Mount a reopened chat's newest messages in one go, with `folded` older ones counted
        in the placeholder (one layout pass, however long the chat was)."""
        if widgets:
            await self.mount_all(widgets)
        self.folded += folded
        if self.folded:
            self._earlier.update(f"▲ {self.folded:,} earlier messages not shown "
                                 "(the transcript keeps them: ctrl+t to browse)")
            self._earlier.display = True
        self.scroll_end(animate=False, immediate=False)
        self.following = True

    async def add_earlier(self, widgets: list[Widget], folded: int, batch: int = 30) -> None:
        """Mount `widgets` (older messages, oldest first) above the mounted ones, newest batch
        first, uncounting them from the placeholder; stops if the chat was cleared meanwhile."""
        for end in range(len(widgets), 0, -batch):
            if self.folded < folded:
                return  # cleared (or another chat opened) since: these belong to no one now
            chunk = widgets[max(0, end - batch):end]
            top = self.messages[0] if self.messages else None
            await self.mount_all(chunk, before=top) if top is not None else await self.mount_all(chunk)
            self.folded -= len(chunk)
            folded -= len(chunk)
            if self.folded:
                self._earlier.update(f"▲ {self.folded:,} earlier messages not shown "
                                     "(the transcript keeps them: ctrl+t to browse)")
            else:
                self._earlier.display = False

    async def clear(self) -> None:
        """Remove every message."""
        await self.remove_children(self.messages)
        self.folded = 0
        self._earlier.display = False
