"""The command palette's fal-persona commands (a Textual Provider)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class FalCommands(Provider):
    """New chat, switch persona, export, transcript browser, theme."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        from agent.tui.app import FalPersonaApp

        app = self.app
        if not isinstance(app, FalPersonaApp):  # the palette is this app's
            return []
        out: list[tuple[str, str, Callable[[], object]]] = [
            ("New chat", "start a fresh session", app.action_new_chat),
            ("Switch persona…", "pick a persona from the list", app.action_switch_persona),
            ("Export transcript (Markdown)", "write this session to a .md file",
             partial(app.action_export, "md")),
            ("Export transcript (JSONL)", "write this session to a .jsonl file",
             partial(app.action_export, "jsonl")),
            ("Browse transcript", "search everything ever logged", app.action_browse_transcript),
            ("Toggle theme", "switch between dark and light", app.action_toggle_theme),
            ("Toggle jobs panel", "show or hide the jobs panel", app.action_toggle_jobs),
            ("Clear chat", "clear the screen (the transcript keeps it)", app.action_clear_chat),
        ]
        for name in sorted(getattr(app, "personas", {}) or {}):
            out.append((f"Persona: {name}", "switch to this persona", partial(app.switch_persona, name)))
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
