"""The status header: persona, model, sandbox or live, the session's spend, the webhook listener,
the persona's MCP servers.

On a narrow terminal (80 columns) it condenses, dropping labels, then the model, then detail of
the mode, the listener and the MCP servers (a count of those up); the spend and the budget
always stay.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from agent.core.money import money
from agent.tui.mcp_status import short_label


class StatusHeader(Static):
    """One line, updated by the app as the runtime loads and money is spent."""

    persona: reactive[str] = reactive("…")
    model: reactive[str] = reactive("loading…")
    mode: reactive[str] = reactive("starting")
    spent: reactive[float] = reactive(0.0)
    budget_left: reactive[float | None] = reactive(None)
    budget: reactive[float | None] = reactive(None)
    """The persona's cap for the session; None: derived as spent + left (fakes give only that)."""
    busy: reactive[bool] = reactive(False)
    webhooks: reactive[str] = reactive("")
    """`on <url>` while the webhook listener runs; empty hides it."""
    mcp: reactive[str] = reactive("")
    """`notes ✓ ghost ✗` (agent/tui/mcp_status.py) when the persona has MCP servers; empty hides it."""

    def spend_text(self) -> str:
        """`spent $0.003 of $5.00` (no budget: `spent $0.003`)."""
        # The cap itself: after a switch to a persona with a smaller budget, spent can exceed it.
        cap = self.budget if self.budget is not None else (
            self.spent + self.budget_left if self.budget_left is not None else None)
        budget = f" of {money(cap)}" if cap is not None else ""
        return f"spent {money(self.spent)}{budget}"

    def _variants(self) -> list[list[tuple[str, str]]]:
        """The line from fullest to most condensed, as (text, style) pieces."""
        spend, bold = self.spend_text(), "bold"
        short_mode = self.mode.split(" (")[0].split(" +")[0]
        state = [(" · working…", "")] if self.busy else []
        short_state = [(" · …", "")] if self.busy else []
        hooks = [(f" · webhooks {self.webhooks}", "")] if self.webhooks else []
        short_hooks = [(" · webhooks", "")] if self.webhooks else []
        mcp = [(f" · mcp {self.mcp}", "")] if self.mcp else []
        short_mcp = [(f" · mcp {short_label(self.mcp)}", "")] if self.mcp else []
        return [
            [("fal-persona", bold), (" · persona ", ""), (self.persona, bold), (f" · model {self.model} · ", ""),
             (self.mode, bold), (f" · {spend}", ""), *state, *hooks, *mcp],
            [(self.persona, bold), (f" · {self.model} · ", ""), (self.mode, bold), (f" · {spend}", ""),
             *state, *short_hooks, *mcp],
            [(self.persona, bold), (" · ", ""), (self.mode, bold), (f" · {spend}", ""), *state, *short_hooks,
             *short_mcp],
            [(self.persona, bold), (" · ", ""), (short_mode, bold), (f" · {spend}", ""), *state, *short_hooks,
             *short_mcp],
            [(self.persona, bold), (" · ", ""), (short_mode, bold), (f" · {spend}", ""), *short_state],
            [(self.persona, bold), (f" · {spend}", ""), *short_state],
            [(spend, "")],
        ]

    def render(self) -> Text:
        width = self.content_region.width or self.size.width
        variants = self._variants()
        if width <= 0:
            return Text.assemble(*variants[0])
        for pieces in variants:
            if sum(len(text) for text, _ in pieces) <= width:
                return Text.assemble(*pieces)
        return Text.assemble(*variants[-1])

    def on_resize(self) -> None:
        self.refresh()
