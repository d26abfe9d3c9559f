"""The transcript browser (ctrl+t): search as you type, each hit with its match highlighted;
Enter on a hit opens its session, read-only."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

MARK_OPEN, MARK_CLOSE = "\x02", "\x03"  # as agent.transcript.store marks matches (not imported: heavy)


def marked_text(snippet: str, limit: int = 120) -> Text:
    """A marked snippet as text with each match highlighted; nothing is read as markup."""
    out = Text()
    inside = False
    shown = 0
    for piece in snippet.replace(MARK_CLOSE, MARK_OPEN).split(MARK_OPEN):
        if shown + len(piece) > limit:
            piece = piece[: max(0, limit - shown)] + "…"
        out.append(piece, style="bold reverse" if inside else "")
        shown += len(piece)
        inside = not inside
        if shown >= limit:
            break
    return out


def describe_event(row: dict[str, Any]) -> Text:
    """One line for a transcript search hit: when, kind, persona, the text with the match lit."""
    data = row.get("data") or {}
    head = Text(f"{str(row.get('ts', ''))[:19]}  {row.get('kind', '?'):<12} {row.get('persona') or '':<10} ")
    marked = row.get("marked")
    if marked:
        return head + marked_text(" ".join(str(marked).split()))
    text = row.get("snippet") or data.get("text") or data.get("answer") or data.get("name") \
        or data.get("message") or json.dumps(data, ensure_ascii=False, default=str)
    return head + Text(" ".join(str(text).split())[:120])


class SessionView(Screen):
    """One transcript session as exported Markdown, read-only; Esc goes back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self):
        yield Label(self.title_text, id="browser-title", markup=False)
        yield TextArea(self.text, read_only=True, soft_wrap=True, id="session-text")
        yield Footer()


class TranscriptBrowser(Screen):
    """Searches the transcript (TranscriptStore.search) as you type; Enter opens a hit's session."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, transcript: Any) -> None:
        super().__init__()
        self.transcript = transcript
        self.hits: list[dict[str, Any]] = []

    def compose(self):
        yield Label("Transcript: type words to search (word* for a prefix), Enter on a hit opens its "
                    "session, Esc goes back", id="browser-title")
        yield Input(placeholder="search the transcript…", id="browser-search")
        yield OptionList(id="browser-results")
        yield Static("", id="browser-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self.transcript is None:
            self.query_one("#browser-status", Static).update("The transcript is off or not ready yet.")

    @on(Input.Changed, "#browser-search")
    def _changed(self, event: Input.Changed) -> None:
        self.search(event.value)

    @on(Input.Submitted, "#browser-search")
    def _to_results(self) -> None:
        if self.hits:
            results = self.query_one("#browser-results", OptionList)
            results.focus()
            if results.highlighted is None:
                results.highlighted = 0

    @work(exclusive=True, group="transcript-search")
    async def search(self, query: str) -> None:
        """Run the search off the UI thread (SQLite is synchronous)."""
        status = self.query_one("#browser-status", Static)
        results = self.query_one("#browser-results", OptionList)
        if self.transcript is None or not query.strip():
            self.hits = []
            results.clear_options()
            return
        try:
            rows = await asyncio.to_thread(self.transcript.search, query, 50)
        except Exception as exc:  # a bad query is a message, not a crash
            status.update(Text(f"search failed: {exc}"))
            return
        self.hits = list(rows)
        results.clear_options()
        results.add_options([Option(describe_event(r)) for r in rows])
        status.update(f"{len(rows)} match{'es' if len(rows) != 1 else ''}"
                      + (" · Enter opens a hit's session" if rows else ""))

    @on(OptionList.OptionSelected, "#browser-results")
    async def _open(self, event: OptionList.OptionSelected) -> None:
        if not 0 <= event.option_index < len(self.hits):
            return
        hit = self.hits[event.option_index]
        session = str(hit.get("session_id") or "")
        try:
            text = await asyncio.to_thread(self.transcript.export, session, "md")
        except Exception as exc:  # shown, the browser stays
            self.query_one("#browser-status", Static).update(Text(f"could not open the session: {exc}"))
            return
        self.app.push_screen(SessionView(f"Session {session} · Esc goes back", text))
