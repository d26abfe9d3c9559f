"""The jobs panel: every submitted or watched request, live."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, ProgressBar, Static

from agent.tui.progress import JobUpdate

DONE_STATUSES = {"COMPLETED", "OK", "ERROR", "FAILED", "CANCELLED", "CANCELLATION_REQUESTED"}


def fmt_elapsed(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class JobRow(Vertical):
    """One request: endpoint, status, queue position, progress bar, elapsed time, result."""

    def __init__(self, request_id: str, endpoint_id: str, started: float) -> None:
        super().__init__(classes="job")
        self.request_id, self.endpoint_id = request_id, endpoint_id
        self.started, self.finished = started, None
        self.status = "SUBMITTED"
        self.queue_position: int | None = None
        self.result: Any = None

    def compose(self):
        yield Label(self.endpoint_id or "?", classes="job-endpoint", markup=False)
        yield Label(f"id {self.request_id}", classes="job-id", markup=False)
        yield Label(self.status, classes="job-status", markup=False)
        yield ProgressBar(total=None, show_eta=False, classes="job-bar")
        with Horizontal(classes="job-foot"):
            yield Label("0s", classes="job-elapsed")
            yield Label("", classes="job-result", markup=False)
        with Horizontal(classes="job-actions"):
            yield Button("Save", id="save", compact=True, disabled=True)
            yield Button("Open", id="open", compact=True, disabled=True)

    @property
    def is_done(self) -> bool:
        return self.finished is not None

    def apply(self, update: JobUpdate, now: float) -> None:
        """Fold one status update in."""
        if update.endpoint_id and not self.endpoint_id:
            self.endpoint_id = update.endpoint_id
            self.query_one(".job-endpoint", Label).update(update.endpoint_id)
        if update.status:
            self.status = update.status
        self.queue_position = update.queue_position
        line = self.status
        if update.queue_position is not None:
            line += f" · queue position {update.queue_position}"
        if update.log:
            line += f" · {update.log[:60]}"
        self.query_one(".job-status", Label).update(line)
        bar = self.query_one(ProgressBar)
        if update.total:
            bar.update(total=update.total, progress=update.done or 0)
        if self.status in DONE_STATUSES and not self.is_done:
            self.finished = now
            if bar.total is None:
                bar.update(total=1, progress=1)
            self.tick(now)

    def set_result(self, result: Any, summary: str, now: float, error: bool = False) -> None:
        """The result landed (or failed)."""
        self.result = result
        if self.finished is None:
            self.finished = now
        self.status = "ERROR" if error else "COMPLETED"
        self.query_one(".job-status", Label).update(self.status)
        bar = self.query_one(ProgressBar)
        bar.update(total=bar.total or 1, progress=bar.total or 1)
        self.query_one(".job-result", Label).update(("✗ " if error else "✓ ") + summary)
        self.add_class("failed" if error else "completed")
        for button in self.query(Button):
            button.disabled = result is None
        self.tick(now)

    def tick(self, now: float) -> None:
        """Refresh the elapsed time."""
        end = self.finished if self.finished is not None else now
        self.query_one(".job-elapsed", Label).update(fmt_elapsed(end - self.started))

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


class JobsPanel(VerticalScroll):
    """Rows keyed by request id; one timer refreshes elapsed times while any job is live."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.rows: dict[str, JobRow] = {}
        self.border_title = "Jobs"

    def compose(self):
        yield Static("No jobs yet: submitted and watched requests appear here.", classes="jobs-empty")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        now = self.clock()
        for row in self.rows.values():
            if not row.is_done:
                row.tick(now)

    async def row_for(self, request_id: str, endpoint_id: str = "") -> JobRow:
        """The row of a request, created (newest on top) when first seen."""
        row = self.rows.get(request_id)
        if row is None:
            for empty in self.query(".jobs-empty"):
                await empty.remove()
            row = JobRow(request_id, endpoint_id, self.clock())
            self.rows[request_id] = row
            await self.mount(row, before=0 if len(self.children) else None)
        return row

    async def update_job(self, update: JobUpdate) -> JobRow:
        """Apply a status update to its job's row."""
        row = await self.row_for(update.request_id, update.endpoint_id)
        row.apply(update, self.clock())
        return row

    async def set_result(self, request_id: str, endpoint_id: str, result: Any, summary: str,
                         error: bool = False) -> JobRow:
        """Record a job's result."""
        row = await self.row_for(request_id, endpoint_id)
        row.set_result(result, summary, self.clock(), error)
        return row

