"""Reopening a stored chat in the TUI: the picker (ctrl+r) and painting a rebuilt conversation.

`ResumePicker` lists the transcript's conversations, most recently active first (title = the
first prompt, persona, date, spend), filtered as you type; Enter reopens one. `resume_into`
has the runtime rebuild the conversation (agent/transcript/replay.py), then paints it: only
the newest `chat.max_mounted` items are made into widgets (the rest are counted in the chat's
"earlier messages" line, as in a long live session), job rows get their recorded states, and
result previews come from the media cache, so they show even when the server that served
them (the stopped app's sandbox) is gone. An approval that was pending is asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from agent.tui.chat import AnswerMessage, ErrorMessage, NoticeMessage, UserMessage


def money_text(value: float) -> str:
    from agent.core.money import money

    return money(value)


def conversation_line(row: dict[str, Any], current: str | None = None) -> Text:
    """One picker row: `● 2026-01-05 10:00  producer    $0.025  make me a fox`."""
    mark = "● " if row.get("id") == current else "  "
    when = str(row.get("last_ts") or row.get("started_at") or "")[:16].replace("T", " ")
    spent = money_text(float(row.get("spent_usd") or 0.0))
    title = str(row.get("title") or "(no prompt)")
    return Text(f"{mark}{when}  {str(row.get('persona') or '?'):<10.10} {spent:>8}  {title[:90]}")


def matches(row: dict[str, Any], query: str) -> bool:
    """Every word of `query` is in the row's title, persona, id or date (any case)."""
    hay = " ".join(str(row.get(k) or "") for k in ("title", "persona", "id", "last_ts", "started_at")).lower()
    return all(word in hay for word in query.lower().split())


class ResumePicker(ModalScreen[str | None]):
    """Pick a stored conversation to reopen: newest first, a search box, Enter reopens, Esc closes."""

    BINDINGS = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    ResumePicker { align: center middle; }
    ResumePicker #resume-box { width: 110; max-width: 95%; height: 80%; border: thick $accent;
        background: $surface; padding: 1 2; }
    ResumePicker #resume-list { height: 1fr; }
    ResumePicker #resume-status { color: $text-muted; height: auto; }
    """

    def __init__(self, transcript: Any, current: str | None = None, limit: int = 500) -> None:
        super().__init__()
        self.transcript, self.current, self.limit = transcript, current, limit
        self.rows: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []

    def compose(self):
        with Vertical(id="resume-box"):
            yield Label("Reopen a chat: type to filter, Enter reopens, Esc closes", id="resume-title")
            yield Input(placeholder="search titles, personas, dates…", id="resume-search")
            yield OptionList(id="resume-list")
            yield Static("loading…", id="resume-status")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.load()

    @work(exclusive=True, group="resume-load")
    async def load(self) -> None:
        """Read the conversations off the UI thread (SQLite is synchronous)."""
        status = self.query_one("#resume-status", Static)
        if self.transcript is None or not callable(getattr(self.transcript, "conversations", None)):
            status.update("The transcript is not ready yet, or this runtime keeps none.")
            return
        try:
            self.rows = await asyncio.to_thread(self.transcript.conversations, self.limit)
        except Exception as exc:  # a message, not a crash
            from agent.tui.turn import readable_error

            status.update(Text(f"could not read the transcript: {readable_error(exc)}"))
            return
        self.refilter(self.query_one(Input).value)

    def refilter(self, query: str) -> None:
        """Show the conversations matching `query` (all when it is empty)."""
        self.shown = [r for r in self.rows if matches(r, query)] if query.strip() else list(self.rows)
        options = self.query_one("#resume-list", OptionList)
        options.clear_options()
        options.add_options([Option(conversation_line(r, self.current), id=str(r["id"])) for r in self.shown])
        if self.shown:
            options.highlighted = 0
        n = len(self.shown)
        self.query_one("#resume-status", Static).update(
            f"{n} chat{'s' if n != 1 else ''}" + (" · Enter reopens the highlighted one" if n else
                                                   (" match" if self.rows else ": nothing stored yet")))

    @on(Input.Changed, "#resume-search")
    def _changed(self, event: Input.Changed) -> None:
        self.refilter(event.value)

    @on(Input.Submitted, "#resume-search")
    def _enter(self) -> None:
        options = self.query_one("#resume-list", OptionList)
        if self.shown:
            index = options.highlighted if options.highlighted is not None else 0
            self.dismiss(str(self.shown[index]["id"]))

    @on(OptionList.OptionSelected, "#resume-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def key_down(self) -> None:
        """Down from the search box walks the list (the box keeps focus for typing)."""
        options = self.query_one("#resume-list", OptionList)
        if self.focused is self.query_one(Input) and self.shown:
            options.action_cursor_down()

    def key_up(self) -> None:
        options = self.query_one("#resume-list", OptionList)
        if self.focused is self.query_one(Input) and self.shown:
            options.action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)


# -- painting a rebuilt conversation ----------------------------------------------------------
_PLAIN_LINE = re.compile(r"[^\W_]+(?:[ ,:;?!'\"()%/-]+[^\W_]+)*[ ,:;?!'\"()%/.-]*")
"""A line Markdown leaves as it is: words (letters, digits) and a few punctuation marks that
mean nothing to it, no two spaces in a row; a dot only at the end of a sentence."""
_MARKDOWN_START = re.compile(r"\d+[.)]|[-+]")


def plain_answer(text: str) -> bool:
    """Whether the Markdown widget would show `text` exactly as a Static does: lines of plain
    words (see `_PLAIN_LINE`; nothing Markdown styles, lists, links or folds), paragraphs one
    empty line apart. An answer that is not plain keeps the Markdown widget."""
    if not text or len(text) > 4000:
        return False
    for paragraph in text.split("\n\n"):
        if not paragraph:
            return False  # three line breaks: Markdown keeps one gap, a Static two
        for line in paragraph.split("\n"):
            if not line or "  " in line or "//" in line or _MARKDOWN_START.match(line):
                return False
            for sentence in line.split(". "):
                if not _PLAIN_LINE.fullmatch(sentence):
                    return False
    return True


class ReplayedAnswer(Static):
    """A reopened chat's plain answer (`plain_answer`), drawn as AnswerMessage draws it, by one
    widget: the Markdown widget would parse it and mount a paragraph widget for each part."""

    DEFAULT_CSS = """
    ReplayedAnswer { color: $foreground; }
    """

    def __init__(self, text: str) -> None:
        # the last paragraph's bottom margin, inside the Markdown widget, is a blank line here
        super().__init__(text + "\n", markup=False, classes="message answer")
        self.text = text


def answer_widget(text: str) -> Widget:
    """A replayed answer's widget: light when plain, the Markdown one otherwise."""
    return ReplayedAnswer(text) if plain_answer(text) else AnswerMessage(text)


def widgets_for(shown: list[Any], *, max_items: int) -> tuple[list[Widget], int]:
    """Widgets for the newest `max_items` shown items, and how many older ones were left out."""
    from agent.tui.media_view import result_widgets
    from agent.tui.toolcard import ToolCard

    skipped = max(0, len(shown) - max_items)
    out: list[Widget] = []
    for item in shown[skipped:]:
        if item.kind == "user":
            out.append(UserMessage(item.text))
        elif item.kind == "answer":
            out.append(answer_widget(item.text))
        elif item.kind == "notice":
            out.append(NoticeMessage(item.text, kind=item.tag or "info"))
        elif item.kind == "error":
            out.append(ErrorMessage(item.text))
        elif item.kind == "tool":
            card = ToolCard(item.call_id, item.name, item.args, item.tool_kind, light=True)
            card.finish(item.content, item.artifact, item.error, item.duration_s)
            out.append(card)
        elif item.kind == "media":  # previews, or a text result inline
            out.extend(result_widgets(item.artifact, item.endpoint_id or "", item.request_id))
    return out, skipped


def job_rows(jobs: dict[str, Any], *, clock: float, stale_note: str = "") -> list[Any]:
    """Job rows in their recorded states, oldest first; `stale_note` goes under a live one
    nobody can follow any more (the stopped app's sandbox ran it)."""
    from agent.tui.jobs import JobRow
    from agent.tui.toolcard import result_summary, summarize

    rows = []
    for state in jobs.values():
        row = JobRow(state.request_id, state.endpoint_id, None, light=True)
        row.status = state.status or "SUBMITTED"
        row.queue_position = state.queue_position if row.status == "IN_QUEUE" else None
        row.result = state.result
        row.previewed = True  # what was previewed is in the chat already
        if state.outcome:
            row.outcome = state.outcome
            row.finished = clock
            mark = {"completed": "✓ ", "failed": "✗ ", "cancelled": "⊘ "}.get(state.outcome, "")
            summary = (result_summary(state.result, state.note or "result") if state.outcome == "completed"
                       else summarize(state.note or state.outcome, 60))
            row.result_line = mark + summary
            if state.outcome == "completed":
                row.done, row.total = 1.0, 1.0
        elif state.note:
            row.result_line = summarize(state.note, 60)
        elif stale_note:
            row.result_line = stale_note
        rows.append(row)
    return rows


FIRST_ITEMS = 24
"""Chat items mounted for the first paint of a reopened chat (a screenful and more); the rest,
up to the chat's cap, are mounted above them right after."""
FIRST_JOBS = 4
"""Job rows mounted for the first paint (each row is some twenty widgets)."""
JOBS_SHOWN = 12
"""Newest job rows mounted in all (the rest after the first paint); older ones keep their
state, unmounted (a line counts them)."""


async def paint_replay(app: Any, rebuilt: Any) -> None:
    """Put a rebuilt conversation in the chat and the jobs panel, replacing what is there.

    Widgets cost most of a reopen, so the first paint gets only the newest `FIRST_ITEMS` items
    and `JOBS_SHOWN` job rows; older items up to `chat.max_mounted` follow in the background."""
    chat, jobs = app.chat, app.jobs
    app.workers.cancel_group(app, "resume-earlier")  # a previous reopen's background mounts
    widgets, skipped = widgets_for(rebuilt.shown, max_items=chat.max_mounted)
    first = widgets[-FIRST_ITEMS:]
    later = widgets[: len(widgets) - len(first)]
    await chat.clear()
    await jobs.clear()
    await chat.add_history(first, skipped + len(later))
    rows = job_rows(rebuilt.jobs, clock=jobs.clock())
    first_rows = rows[-FIRST_JOBS:]
    more_rows = rows[-JOBS_SHOWN:-FIRST_JOBS] if len(rows) > FIRST_JOBS else []
    await jobs.restore(first_rows, older=rows[: len(rows) - len(first_rows)])
    app.painted_session = rebuilt.session_id

    async def rest() -> None:
        await jobs.add_older(more_rows)
        await chat.add_earlier(later, len(later))

    if later or more_rows:
        app.call_after_refresh(lambda: app.run_worker(rest(), group="resume-earlier"))


async def show_replay(app: Any, rebuilt: Any) -> None:
    """Show a reopened conversation (painting it unless `preview` already did), then its live
    jobs: followed in live mode, marked as recorded when the stopped app's sandbox ran them."""
    if getattr(app, "painted_session", None) != rebuilt.session_id:
        await paint_replay(app, rebuilt)
    sandboxed = getattr(app.runtime, "mode", "") == "sandbox"
    for row in list(app.jobs.rows.values()):
        if row.is_done:
            continue
        if sandboxed:
            row.note("as recorded: the sandbox that ran it has stopped")
        else:  # live: fal still knows these requests, so follow the ones not ended
            app.follow(row.endpoint_id, row.request_id)
    title = rebuilt.title if len(rebuilt.title) <= 60 else rebuilt.title[:59] + "…"
    note = f"reopened chat {rebuilt.session_id} · “{title}” · {len(rebuilt.shown):,} items"
    if rebuilt.pending:
        names = ", ".join(p.name for p in rebuilt.pending)
        note += f" · {len(rebuilt.pending)} approval(s) were waiting when the app stopped ({names}): asking again"
    await app.chat.add(NoticeMessage(note, kind="persona"))


def read_replay(session_id: str | None) -> Any:
    """The stored chat `session_id` (None: the latest), rebuilt for display only, straight from
    the transcript file; None when there is none (blocking: call it in a thread)."""
    from agent.locations import transcript_db
    from agent.transcript.replay import replay
    from agent.transcript.store import TranscriptError, TranscriptStore

    path = transcript_db()
    if not path.exists():
        return None
    store = TranscriptStore(path, enabled=False, secrets=())  # reading only: nothing to redact
    try:
        sid = store.resolve_session(session_id) if session_id else store.latest_conversation()
        return replay(sid, store.events(sid), messages=False) if sid else None
    except TranscriptError:
        return None  # resume_into says why, once the runtime is up
    finally:
        store.close()


async def preview(app: Any, session_id: str | None) -> None:
    """Paint the chat being reopened from the transcript while the runtime is still being
    built (LangChain, the sandbox), so it shows at once; `resume_into` then only hands the
    conversation to the agent and asks any pending approval."""
    try:
        rebuilt = await asyncio.to_thread(read_replay, session_id)
    except Exception:  # only the early paint is lost; resume_into reports problems
        return
    if rebuilt is None or app.runtime is not None:
        return  # nothing stored, or the runtime was quicker: resume_into paints
    app.resume = rebuilt.session_id  # the runtime reopens exactly this one
    await paint_replay(app, rebuilt)
    # The runtime's build waits for this worker: let the chat reach the screen first (the
    # build's imports, in a thread, would hold the interpreter while it is drawn).
    drawn = asyncio.Event()
    app.call_after_refresh(drawn.set)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            await drawn.wait()


async def resume_into(app: Any, session_id: str | None, *, wait: bool = True) -> bool:
    """Reopen `session_id` (None: the latest chat) in the app; False with a message if it cannot.
    `wait=False` when called while the runtime is being set up (before `ready`)."""
    from agent.tui.turn import readable_error

    if wait:  # reopened from the picker: whatever the chat shows now gets replaced
        await app.ready.wait()
        app.painted_session = None
    runtime = app.runtime
    if runtime is None or not callable(getattr(runtime, "resume_session", None)):
        await app.chat.add(ErrorMessage("cannot reopen a chat: " + (app.runtime_error or "this runtime keeps no transcript")))
        return False
    if app._busy():
        app.pending.clear()
        app.turn_worker.cancel()
        try:
            await app.turn_worker.wait()
        except Exception:  # cancelled or failed: it is over either way
            pass
    try:
        rebuilt = await asyncio.to_thread(runtime.resume_session, session_id)
    except Exception as exc:  # e.g. no such session, nothing stored yet
        message = str(exc) if type(exc).__name__ == "TranscriptError" else readable_error(exc)
        await app.chat.add(ErrorMessage(f"cannot reopen the chat: {message}"))
        return False
    await show_replay(app, rebuilt)
    app._subscribe_webhooks()
    app._refresh_header()
    if getattr(app.runner, "pending", None):
        app.turn_worker = app.run_events("", pending=True)
    return True
