"""The prompt: a TextArea that sends on Enter, adds a newline on ctrl+j, walks history,
completes paths after `/attach ` on Tab, and attaches a pasted (or dropped) file path."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from agent.tui.history import InputHistory
from agent.tui.keys import DEFAULT_KEYS, key_set


class PromptInput(TextArea):
    """Multi-line input. Key choices come from the `[keys]` config (send, newline, history)."""

    @dataclass
    class Submitted(Message):
        """The user sent `text` (already stripped; never empty)."""

        text: str

    @dataclass
    class PathsPasted(Message):
        """A paste that was nothing but paths of existing files (a drag-and-drop)."""

        paths: list[str]

    def __init__(self, history: InputHistory | None = None, keys: dict[str, str] | None = None,
                 **kw) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kw)
        keys = keys or DEFAULT_KEYS
        self.input_history = history or InputHistory(None)
        self.send_keys = key_set(keys["send"])
        self.newline_keys = key_set(keys["newline"])
        self.prev_keys = key_set(keys["history_prev"])
        self.next_keys = key_set(keys["history_next"])

    def _set_text(self, text: str) -> None:
        self.text = text
        self.move_cursor(self.document.end)

    async def _on_paste(self, event: events.Paste) -> None:
        """A pasted file path attaches the file, unless a command is being typed (then the
        path is text, e.g. after `/attach `)."""
        from agent.tui.attachments import pasted_paths

        if not self.text.lstrip().startswith("/"):
            paths = pasted_paths(event.text)
            if paths:
                event.stop()
                event.prevent_default()
                self.post_message(self.PathsPasted(paths))
        # Otherwise TextArea's own paste handler inserts the text (Textual calls each class's
        # handler in turn unless prevent_default() stopped it).

    def _complete(self) -> bool:
        """Tab after `/attach `: complete the path; several matches are listed. True when handled."""
        from agent.tui.attachments import complete_path

        text = self.text
        head = "/attach "
        if "\n" in text or not text.lower().startswith(head):
            return False
        typed = text[len(head):].lstrip()
        completed, candidates = complete_path(typed)
        if completed != typed:
            self._set_text(head + completed)
        if candidates:
            self.notify("  ".join(candidates), title="matches", timeout=4)
        elif completed == typed:
            self.app.bell()
        return True

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key == "tab" and self._complete():
            event.stop()
            event.prevent_default()
            return
        if key in self.send_keys:
            event.stop()
            event.prevent_default()
            text = self.text.strip()
            if text:
                self.input_history.add(text)
                self.clear()
                self.post_message(self.Submitted(text))
            return
        if key in self.newline_keys:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        row = self.cursor_location[0]
        if key in self.prev_keys and row == 0:
            entry = self.input_history.prev(self.text)
            event.stop()
            event.prevent_default()
            if entry is not None:
                self._set_text(entry)
            return
        if key in self.next_keys and row >= self.document.line_count - 1:
            entry = self.input_history.next()
            event.stop()
            event.prevent_default()
            if entry is not None:
                self._set_text(entry)
            return
        await super()._on_key(event)
