"""Modal and full screens: approval, persona picker, transcript browser."""

from __future__ import annotations

import json
from typing import Any

from textual import on, work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from agent.events import ApprovalRequest, Decision


def money(value: float | None) -> str:
    """`$0.25`, or `unknown`."""
    if value is None:
        return "unknown"
    if value >= 1 or value == 0:
        return f"${value:,.2f}"
    text = f"{value:.4f}".rstrip("0")
    return "$" + (text + "0" if len(text.split(".")[1]) < 2 else text)


def parse_args_json(text: str) -> dict[str, Any]:
    """Edited arguments: must be a JSON object; ValueError with a readable reason otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise ValueError("the arguments must be a JSON object ({...})")
    return value


class ApprovalScreen(ModalScreen[Decision]):
    """Asks before a spend or cancel: what will run, its arguments, the estimate, the budget."""

    BINDINGS = [
        Binding("escape", "reject", "Reject", priority=True),
    ]

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request = request
        self._original = json.dumps(request.args, indent=2, ensure_ascii=False, default=str)

    def compose(self):
        r = self.request
        verb = "spend money" if r.kind == "spend" else "cancel work" if r.kind == "destructive" else "run"
        with Vertical(id="approval"):
            yield Label(f"Approve: {r.name}", id="approval-title", markup=False)
            yield Static(f"This call will {verb}.", classes="approval-kind")
            yield Static(f"Estimate: {money(r.estimate_usd)}   ·   Budget left: {money(r.budget_left_usd)}",
                         id="approval-money")
            yield Label("Arguments (edit, then Approve edited):")
            yield TextArea(self._original, language="json", id="approval-args", soft_wrap=True)
            yield Static("", id="approval-error")
            with Horizontal(id="approval-buttons"):
                yield Button("Approve", id="approve", variant="success")
                yield Button("Approve edited", id="edit", variant="primary")
                yield Button("Reject", id="reject", variant="error")

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()

    def action_approve(self) -> None:
        self.dismiss(Decision(action="approve"))

    def action_reject(self) -> None:
        self.dismiss(Decision(action="reject", reason="rejected by the user"))

    def _edit(self) -> None:
        text = self.query_one("#approval-args", TextArea).text
        try:
            args = parse_args_json(text)
        except ValueError as exc:
            self.query_one("#approval-error", Static).update(f"⚠ {exc}")
            return
        if args == self.request.args:
            self.dismiss(Decision(action="approve"))
        else:
            self.dismiss(Decision(action="edit", args=args))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"approve": self.action_approve, "reject": self.action_reject, "edit": self._edit}[event.button.id]()


class PersonaScreen(ModalScreen[str | None]):
    """Pick a persona from a list."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, personas: dict[str, Any], current: str | None) -> None:
        super().__init__()
        self.personas, self.current = personas, current

    def compose(self):
        options = []
        for name, persona in sorted(self.personas.items()):
            mark = "● " if name == self.current else "  "
            desc = getattr(persona, "description", "") or ""
            options.append(Option(f"{mark}{name}  {desc}", id=name))
        with Vertical(id="persona-box"):
            yield Label("Switch persona (Enter picks, Esc closes)")
            yield OptionList(*options, id="persona-list")

    def on_mount(self) -> None:
        names = sorted(self.personas)
        option_list = self.query_one(OptionList)
        option_list.highlighted = names.index(self.current) if self.current in names else 0
        option_list.focus()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


def describe_event(row: dict[str, Any]) -> str:
    """One line for a transcript search hit."""
    data = row.get("data") or {}
    text = row.get("snippet") or data.get("text") or data.get("answer") or data.get("name") \
        or data.get("message") or json.dumps(data, ensure_ascii=False, default=str)
    text = " ".join(str(text).split())
    return f"{str(row.get('ts', ''))[:19]}  {row.get('kind', '?'):<12} {row.get('persona') or '':<10} {text[:120]}"


class TranscriptBrowser(Screen):
    """Searches the transcript (TranscriptStore.search) as you type."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, transcript: Any) -> None:
        super().__init__()
        self.transcript = transcript

    def compose(self):
        yield Label("Transcript: type words to search (prefix with word*), Esc goes back", id="browser-title")
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

    @work(exclusive=True, group="transcript-search")
    async def search(self, query: str) -> None:
        """Run the search off the UI thread (SQLite is synchronous)."""
        import asyncio

        status = self.query_one("#browser-status", Static)
        results = self.query_one("#browser-results", OptionList)
        if self.transcript is None or not query.strip():
            results.clear_options()
            return
        try:
            rows = await asyncio.to_thread(self.transcript.search, query, 50)
        except Exception as exc:  # a bad query is a message, not a crash
            status.update(f"search failed: {exc}")
            return
        results.clear_options()
        results.add_options([Option(describe_event(r)) for r in rows])
        status.update(f"{len(rows)} match{'es' if len(rows) != 1 else ''}")
