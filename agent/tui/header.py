"""The status header: persona, model, sandbox or live, the session's spend, the webhook listener."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusHeader(Static):
    """One line, updated by the app as the runtime loads and money is spent."""

    persona: reactive[str] = reactive("…")
    model: reactive[str] = reactive("loading…")
    mode: reactive[str] = reactive("starting")
    spent: reactive[float] = reactive(0.0)
    budget_left: reactive[float | None] = reactive(None)
    busy: reactive[bool] = reactive(False)
    webhooks: reactive[str] = reactive("")
    """`on <url>` while the webhook listener runs; empty hides it."""

    def render(self) -> Text:
        budget = f" of ${self.spent + self.budget_left:,.2f}" if self.budget_left is not None else ""
        state = " · working…" if self.busy else ""
        hooks = f" · webhooks {self.webhooks}" if self.webhooks else ""
        return Text.assemble(
            ("fal-persona", "bold"), " · persona ", (self.persona, "bold"), f" · model {self.model} · ",
            (self.mode, "bold"), f" · spent ${self.spent:,.2f}{budget}{state}{hooks}",
        )
