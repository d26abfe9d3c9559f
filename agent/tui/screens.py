"""Modal screens: approval and the persona picker (the transcript browser is agent.tui.browser)."""

from __future__ import annotations

import json
from typing import Any

from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from agent.core.events import ApprovalRequest, Decision
from agent.core.gate import Price, call_cost, money  # money: one formatter for every screen
from agent.core.media_inputs import approval_lines


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
    """Asks before a spend or cancel: what will run, its arguments, what this call costs, the
    budget left. Editing the arguments re-prices the call as you type (from the endpoint's
    unit price in the request); the guard prices and checks the edited call again anyway.

    Fits 80x24: the buttons stay on screen and the arguments editor takes what room is left
    (it scrolls)."""

    DEFAULT_CSS = """
    ApprovalScreen #approval {
        layout: vertical;
        height: auto;
    }
    ApprovalScreen #approval-money {
        height: auto;
    }
    ApprovalScreen #approval-error {
        height: auto;
    }
    ApprovalScreen #approval-error:empty {
        display: none;
    }
    ApprovalScreen #approval-buttons Button {
        min-width: 10;
    }
    """

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
            if r.warning:
                yield Static(f"⚠ {r.warning}", id="approval-warning", markup=False)
            yield Label(f"Approve: {r.name}", id="approval-title", markup=False)
            yield Static(f"This call will {verb}.", classes="approval-kind")
            yield Static(self.money_line(), id="approval-money", markup=False)
            inputs = "\n".join(approval_lines(r))
            if inputs:  # the files a submit uploads, the schema's defaults, or no schema
                yield Static(inputs, id="approval-inputs", markup=False)
            yield Label("Arguments (edit, then Approve edited):")
            yield TextArea(self._original, language="json", id="approval-args", soft_wrap=True)
            yield Static("", id="approval-error", markup=False)
            with Horizontal(id="approval-buttons"):
                yield Button("Approve", id="approve", variant="success")
                yield Button("Approve edited", id="edit", variant="primary")
                yield Button("Reject", id="reject", variant="error")

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """Give the editor the rows the modal can spare (3 to 10), so the buttons stay on
        screen; the editor scrolls what does not fit."""
        if not self.is_attached:
            return
        box = self.query_one("#approval")
        area = self.query_one("#approval-args", TextArea)
        cap = box.styles.max_height
        tallest = int(cap.resolve(self.size, self.size)) if cap is not None else self.size.height
        tallest = min(tallest, self.size.height) - box.styles.gutter.height
        others = sum(w.outer_size.height + w.styles.margin.height for w in box.children
                     if w is not area and w.display)
        rows = max(3, min(10, tallest - others - area.styles.margin.height))
        now = area.styles.height
        if now is None or not now.is_cells or int(now.value) != rows:
            area.styles.height = rows

    # -- money --------------------------------------------------------------------------------
    def _price(self) -> Price | None:
        r = self.request
        if r.unit_price_usd is None and r.per_call_usd is None:
            return None
        endpoint = str(r.args.get("endpoint_id") or "")
        return Price(endpoint, r.unit_price_usd, r.unit, "request", r.per_call_usd)

    def money_line(self, args: dict[str, Any] | None = None) -> str:
        """`Cost of this call: $0.025 (1 image × $0.025/image) · Budget left: $5.00`; with
        edited `args`, what the edited call costs (or that the guard will price it)."""
        r = self.request
        left = f"Budget left: {money(r.budget_left_usd)}"
        if r.name != "submit_queue_request":
            return left if r.budget_left_usd is not None else ""
        if args is None or args == r.args:
            cost = "cost unknown" if r.estimate_usd is None else money(r.estimate_usd)
            basis = f" ({r.cost_basis})" if r.cost_basis and r.estimate_usd is not None else ""
            return f"Cost of this call: {cost}{basis}   ·   {left}"
        was = f" (was {money(r.estimate_usd)})" if r.estimate_usd is not None else ""
        if str(args.get("endpoint_id") or "") != str(r.args.get("endpoint_id") or ""):
            return f"Edited call: another endpoint, priced when you approve{was}   ·   {left}"
        arguments = args.get("arguments")
        edited = call_cost(self._price(), arguments if isinstance(arguments, dict) else {})
        if edited.usd is None:
            return f"Edited call: cost unknown{was}   ·   {left}"
        over = (" ⚠ more than the budget left: it will be refused"
                if r.budget_left_usd is not None and edited.usd > r.budget_left_usd + 1e-9 else "")
        return f"Edited call: {money(edited.usd)} ({edited.basis}){was}   ·   {left}{over}"

    @on(TextArea.Changed, "#approval-args")
    def _reprice(self, event: TextArea.Changed) -> None:
        try:
            args = parse_args_json(event.text_area.text)
        except ValueError:
            return  # half-typed JSON: keep the last cost; Approve edited says what is wrong
        self.query_one("#approval-money", Static).update(self.money_line(args))
        self.query_one("#approval-error", Static).update("")
        self.call_after_refresh(self._fit)  # the money line may now wrap to two rows

    # -- decisions ----------------------------------------------------------------------------
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
        {"approve": self.action_approve, "reject": self.action_reject, "edit": self._edit}[event.button.id or ""]()


class PersonaScreen(ModalScreen[str | None]):
    """Pick a persona from a list."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, personas: dict[str, Any], current: str | None) -> None:
        super().__init__()
        self.personas, self.current = personas, current

    def compose(self):
        from rich.text import Text

        options = []
        for name, persona in sorted(self.personas.items()):
            mark = "● " if name == self.current else "  "
            desc = getattr(persona, "description", "") or ""
            options.append(Option(Text(f"{mark}{name}  {desc}"), id=name))  # as written, never markup
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


