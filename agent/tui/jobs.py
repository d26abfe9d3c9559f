"""The jobs panel: every submitted or watched request, live.

A row keeps its state in plain attributes and paints it onto its child widgets only while it
is mounted (and once more when it mounts), so a timer tick, a status from a follower or a
webhook can arrive at any moment, even before the row is on screen, without touching
widgets that are not there yet.

A reopened chat's finished rows mount `light`: the progress bar, the result line and the
Save/Open buttons are drawn by one widget (`LightFoot`, looking as they do) instead of some
ten, and the row becomes the full one when the pointer reaches it, it is clicked (a click on
a drawn button presses the real one) or focused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import events, on
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Label, ProgressBar, Static

from agent.tui.progress import JobUpdate

log = logging.getLogger(__name__)

# What fal's queue reports is IN_QUEUE, IN_PROGRESS or COMPLETED (a failed or cancelled
# request is COMPLETED with an error). The rest are this app's own words for the end states.
DONE_STATUSES = {"COMPLETED", "OK", "ERROR", "FAILED", "CANCELLED"}
LIVE_STATUSES = {"SUBMITTED", "IN_QUEUE", "IN_PROGRESS", "CANCELLATION_REQUESTED"}


def fmt_elapsed(seconds: float) -> str:
    """`0.8s`, `42s`, `3m05s`, `1h02m`."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


BAR_WIDTH = 32
"""Textual's progress bar is this wide at most (its Bar's own CSS)."""
PCT_WIDTH = 5
"""`.job-pct`'s width in app.tcss."""
BUTTON_MIN_WIDTH = 16
"""A compact Button's min-width (Textual's CSS); 7 on a narrow screen (app.tcss)."""


class LightFoot(Widget, can_focus=True):
    """A light row's last three lines, drawn as the full row shows them: the progress bar and
    its percentage, the result line, the Save and Open buttons (Cancel is hidden once done)."""

    DEFAULT_CSS = """
    LightFoot { height: 3; }
    """
    ALLOW_SELECT = False
    FOCUS_ON_CLICK = False  # a click presses the drawn button it is on (see _on_click)

    def _row(self) -> JobRow | None:
        return self.parent if isinstance(self.parent, JobRow) else None

    def render(self) -> Content:
        row = self._row()
        width = self.size.width
        if row is None or width <= 0:
            return Content("")
        # the bar: ━ in the complete colour when done, in the empty one when no progress is known
        bar_room = max(0, width - PCT_WIDTH)
        full = bool(row.total) and (row.done or 0.0) >= (row.total or 0.0)
        bar = Content.styled("━" * min(BAR_WIDTH, bar_room), "$success" if full else "$surface")
        pct = f"{100 * (row.done or 0.0) / row.total:3.0f}%" if row.total else ""
        line1 = Content.assemble(bar, " " * (bar_room - min(BAR_WIDTH, bar_room)), pct.rjust(PCT_WIDTH)[-PCT_WIDTH:])
        # elapsed (none: a replayed row claims no time) and the result, two cells in
        line2 = Content("  " + row.result_line)
        # compact buttons: bold, centred, on the surface colour, one cell apart
        narrow = self.screen.has_class("narrow")
        style = "bold $button-foreground on $surface"  # enabled: a light row has a result
        parts: list[Content | str] = []
        for label in ("Save", "Open"):
            size = 7 if narrow else max(BUTTON_MIN_WIDTH, len(label) + 2)
            left = (size - len(label)) // 2
            parts += [Content.styled(" " * left + label + " " * (size - len(label) - left), style), " "]
        line3 = Content.assemble(*parts)
        return Content("\n").join([line.truncate(width) for line in (line1, line2, line3)])

    def button_at(self, x: int, y: int) -> str | None:
        """The id of the drawn button at (x, y) in this widget, if any."""
        if y != 2:
            return None
        size = 7 if self.screen.has_class("narrow") else BUTTON_MIN_WIDTH
        if 0 <= x < size:
            return "save"
        if size + 1 <= x < 2 * size + 1:
            return "open"
        return None

    # The row does the work, in its own queue: building it removes this widget, which would
    # end a handler still running here.
    def on_enter(self, event: events.Enter) -> None:
        row = self._row()
        if row is not None:
            row.call_later(row.unfold)

    def on_click(self, event: events.Click) -> None:
        event.stop()
        row = self._row()
        if row is not None:
            row.call_later(row.unfold, press=self.button_at(event.x, event.y))

    def on_focus(self, event: events.Focus) -> None:
        row = self._row()
        if row is not None:
            row.call_later(row.unfold, focus=True)


class JobRow(Vertical):
    """One request: endpoint, status, queue position, progress, elapsed time, result, actions.

    `started` is when this app submitted it (None for a request it only watched: then no
    elapsed time is claimed); `finished` is when the COMPLETED status (or result) arrived.
    `light`: drawn light while it can be (finished, watched only, no partial progress; see
    the module docstring).
    """

    @dataclass
    class CancelPressed(Message):
        """The row's Cancel button: cancel this request (through the guarded tool call)."""

        request_id: str
        endpoint_id: str

    def __init__(self, request_id: str, endpoint_id: str, started: float | None, *,
                 light: bool = False) -> None:
        super().__init__(classes="job")
        self.light = light
        self._unfolding = asyncio.Lock()
        self.request_id, self.endpoint_id = request_id, endpoint_id
        self.started: float | None = started
        self.finished: float | None = None
        self.status = "SUBMITTED"
        self.queue_position: int | None = None
        self.log_line = ""
        self.done: float | None = None
        self.total: float | None = None
        self.result: Any = None
        self.result_line = ""
        self.outcome = ""  # "", "completed", "failed" or "cancelled"
        self.previewed = False  # its media is on screen already (show each image once)
        self._now: float | None = None
        self._composed = False

    def drawn_light(self) -> bool:
        """Whether it composes light now: asked to, and its look is one LightFoot draws (done,
        with a result to save, so its buttons are enabled; no start time; no partial bar)."""
        whole = not self.total or (self.done or 0.0) in (0.0, self.total)
        return (self.light and self.is_done and self.started is None and whole
                and self.result is not None)

    def compose(self):
        yield Label(self.endpoint_id or "?", classes="job-endpoint", markup=False)
        yield Label(f"id {self.request_id}", classes="job-id", markup=False)
        yield Label(self._status_line(), classes="job-status", markup=False)
        if self.drawn_light():
            yield LightFoot()
            return
        with Horizontal(classes="job-progress"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=False, classes="job-bar")
            yield Label("", classes="job-pct")
        with Horizontal(classes="job-foot"):
            yield Label("", classes="job-elapsed")
            yield Label("", classes="job-result", markup=False)
        with Horizontal(classes="job-actions"):
            yield Button("Save", id="save", compact=True, disabled=True)
            yield Button("Open", id="open", compact=True, disabled=True)
            yield Button("Cancel", id="cancel", compact=True, classes="job-cancel")

    def on_mount(self) -> None:
        self._composed = True  # children exist from here on (is_mounted is set only after this)
        self._paint()

    async def unfold(self, *, press: str | None = None, focus: bool = False) -> None:
        """A light row becomes the full one (same look, real buttons); when this returns, the
        full row's widgets are there (a second caller waits for the first). Then `press` (a
        button's id) is clicked as the pointer would, or with `focus` the first button focused."""
        self.light = False
        async with self._unfolding:
            if self._composed and self.is_attached and self.query(LightFoot):
                await self.recompose()
                self._paint()
        buttons = [b for b in self.query(Button) if b.display and not b.disabled]
        if press:
            for button in buttons:
                if button.id == press:
                    button.focus()
                    button.press()
        elif focus and buttons:
            buttons[0].focus()

    @property
    def is_done(self) -> bool:
        return self.finished is not None

    # -- state changes (safe at any time) -------------------------------------------------------
    def apply(self, update: JobUpdate, now: float) -> None:
        """Fold one status update in: what fal said, as it said it."""
        if self.is_done and update.status not in DONE_STATUSES:
            return  # a late, older status (e.g. a slow poll) must not revive a finished row
        if update.endpoint_id and not self.endpoint_id:
            self.endpoint_id = update.endpoint_id
        if update.status:
            self.status = update.status
        self.queue_position = update.queue_position if self.status == "IN_QUEUE" else None
        if update.log:
            self.log_line = update.log
        if update.total:
            self.done, self.total = update.done or 0.0, update.total
        if self.status == "COMPLETED" and not self.is_done:
            self.finished = now
        self._paint(now)

    def set_result(self, result: Any, summary: str, now: float, error: bool = False,
                   cancelled: bool = False) -> None:
        """The outcome landed: a result, a failure, or fal's word that it was cancelled."""
        self.result = result
        if self.finished is None:
            self.finished = now
        self.outcome = "cancelled" if cancelled else "failed" if error else "completed"
        self.status = "CANCELLED" if cancelled else "ERROR" if error else "COMPLETED"  # ERROR: fal's word (webhooks)
        if not error and not cancelled:
            self.done, self.total = 1.0, 1.0
        self.result_line = ("⊘ " if cancelled else "✗ " if error else "✓ ") + summary
        self._paint(now)

    def note(self, text: str) -> None:
        """A line under the row that changes no state (e.g. a cancel that came too late)."""
        self.result_line = text
        self._paint()

    def tick(self, now: float) -> None:
        """Refresh the elapsed time."""
        self._now = now
        if self._composed and self.is_attached:
            self._paint_elapsed()

    # -- painting (only while mounted) ------------------------------------------------------------
    def _status_line(self) -> str:
        line = self.status
        if self.queue_position is not None:
            line += f" · queue position {self.queue_position}"
        if self.log_line and not self.outcome:
            line += f" · {self.log_line[:60]}"
        return line

    def _paint(self, now: float | None = None) -> None:
        if now is not None:
            self._now = now
        mounted = self._composed and self.is_attached
        for cls in ("completed", "failed", "cancelled"):  # before mounting: no style update
            self.set_class(self.outcome == cls, cls, update=mounted)
        if not mounted:
            return
        self.query_one(".job-endpoint", Label).update(self.endpoint_id or "?")
        self.query_one(".job-status", Label).update(self._status_line())
        light = self.query(LightFoot)
        if light:
            if self.drawn_light():
                light.first().refresh()
            else:  # its state left what the light row draws (e.g. a partial progress)
                self.light = False
                self.call_later(self.unfold)
            return
        bar = self.query_one(ProgressBar)
        pct = self.query_one(".job-pct", Label)
        if self.total:
            bar.update(total=self.total, progress=self.done or 0.0)
            pct.update(f"{100 * (self.done or 0.0) / self.total:3.0f}%")
        elif self.is_done:
            bar.update(total=1, progress=0)  # ended with no progress known: an empty bar, no claim
            pct.update("")
        else:
            pct.update("…")  # indeterminate: fal gave no progress yet
        self.query_one(".job-result", Label).update(self.result_line)
        for button in self.query(Button):
            if button.id == "cancel":
                button.display = not self.is_done
            else:
                button.disabled = self.result is None
        self._paint_elapsed()

    def _paint_elapsed(self) -> None:
        found = self.query(".job-elapsed")
        if not found:
            return  # a light row: it claims no time (it has no start)
        label = found.first(Label)
        if self.started is None:
            label.update("")
            return
        end = self.finished if self.finished is not None else self._now
        label.update(fmt_elapsed(end - self.started) if end is not None else "")

    # -- actions ----------------------------------------------------------------------------
    async def save(self) -> Path:
        """Save the first media file of the result, or the result JSON when it holds none."""
        from agent.media import find_media, save_media, save_result_json

        media = find_media(self.result)
        stem = f"{self.endpoint_id.replace('/', '-')}-{self.request_id[:8]}"
        if media:
            return await save_media(media[0], stem=stem)
        return save_result_json(self.result, stem=stem)

    @on(Button.Pressed, "#save, #open")
    async def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        from agent.tui.media_view import save_and_report

        await save_and_report(self, self.save, open_after=event.button.id == "open")

    @on(Button.Pressed, "#cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.CancelPressed(self.request_id, self.endpoint_id))


class JobsPanel(VerticalScroll):
    """Rows keyed by request id; one timer refreshes elapsed times while any job is live."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.rows: dict[str, JobRow] = {}
        self.border_title = "Jobs"
        self.on_outcome: Callable[[JobRow], None] | None = None
        """Called when a row's outcome lands (the app records it for a resumed chat)."""

    def compose(self):
        yield Static("No jobs yet: submitted and watched requests appear here.", classes="jobs-empty")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        now = self.clock()
        for row in list(self.rows.values()):
            if not row.is_done:
                try:
                    row.tick(now)
                except Exception:  # a display refresh must never take the app down
                    log.exception("jobs panel: could not refresh %s", row.request_id)

    def latest(self) -> JobRow | None:
        """The newest row."""
        return next(reversed(self.rows.values()), None) if self.rows else None

    def live_rows(self) -> list[JobRow]:
        """Rows whose request has not ended yet."""
        return [r for r in self.rows.values() if not r.is_done]

    async def row_for(self, request_id: str, endpoint_id: str = "", *,
                      submitted: bool = False) -> JobRow:
        """The row of a request, created (newest on top) when first seen.

        `submitted`: this app just submitted it, so the elapsed time counts from now."""
        row = self.rows.get(request_id)
        if row is None:
            row = JobRow(request_id, endpoint_id, self.clock() if submitted else None)
            self.rows[request_id] = row
            for empty in self.query(".jobs-empty"):
                await empty.remove()
            await self.mount(row, before=0 if len(self.children) else None)
        elif submitted and row.started is None:
            row.started = self.clock()
        if endpoint_id and not row.endpoint_id:
            row.endpoint_id = endpoint_id
        return row

    async def update_job(self, update: JobUpdate) -> JobRow:
        """Apply a status update to its job's row."""
        row = await self.row_for(update.request_id, update.endpoint_id)
        row.apply(update, self.clock())
        return row

    async def set_result(self, request_id: str, endpoint_id: str, result: Any, summary: str,
                         error: bool = False, cancelled: bool = False) -> JobRow:
        """Record a job's outcome."""
        row = await self.row_for(request_id, endpoint_id)
        row.set_result(result, summary, self.clock(), error, cancelled)
        if self.on_outcome is not None:
            try:
                self.on_outcome(row)
            except Exception:  # recording it must not break the panel
                log.exception("jobs panel: could not report the outcome of %s", request_id)
        return row

    async def add_older(self, rows: list[JobRow]) -> None:
        """Mount rows `restore` kept unmounted (oldest first) below the mounted ones."""
        rows = [r for r in rows if r.request_id in self.rows and r.parent is None]
        if not rows:
            return
        label = next(iter(self.query(".jobs-older").results(Static)), None)
        await self.mount_all(list(reversed(rows)), before=label)
        unmounted = sum(1 for r in self.rows.values() if r.parent is None)
        if label is not None:
            if unmounted:
                label.update(f"{unmounted} older job(s) of this chat: see the transcript (ctrl+t)")
            else:
                await label.remove()

    async def clear(self) -> None:
        """Remove every row (another chat is being opened)."""
        await self.remove_children([r for r in self.rows.values() if r.parent is self])
        await self.remove_children(list(self.query(".jobs-older")))
        self.rows.clear()

    async def restore(self, rows: list[JobRow], older: list[JobRow] | None = None) -> None:
        """Show a reopened chat's rows (oldest first in `rows`; newest on top), in one mount;
        `older` rows keep their state unmounted (a line at the bottom counts them)."""
        older = list(older or [])
        if not rows and not older:
            return
        for empty in self.query(".jobs-empty"):
            await empty.remove()
        for row in [*older, *rows]:
            self.rows[row.request_id] = row
        await self.mount_all(list(reversed(rows)), before=0 if len(self.children) else None)
        if older:
            await self.mount(Static(f"{len(older)} older job(s) of this chat: see the transcript (ctrl+t)",
                                    classes="jobs-older"))
