"""The prompt's input history: walked with Up/Down, persisted one entry a line."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

MAX_ENTRIES = 1000


class InputHistory:
    """A bounded list of past inputs with a cursor; multi-line entries are stored escaped.

    `prev()` / `next()` walk it like a shell: `next()` past the newest returns the draft that
    was being typed when the walk began.
    """

    def __init__(self, path: Path | None = None, max_entries: int = MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self.entries: list[str] = []
        self._cursor: int | None = None
        self._draft = ""
        if path is not None:
            self.entries = self._load(path)[-max_entries:]

    @staticmethod
    def _load(path: Path) -> list[str]:
        """Entries from disk; an unreadable file is an empty history, never a crash."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("input history %s unreadable, starting empty: %s", path, exc)
            return []
        return [line.replace("\\n", "\n").replace("\\\\", "\\") for line in lines if line]

    def add(self, text: str) -> None:
        """Record a sent input (skipping blanks and an immediate repeat) and reset the walk."""
        self._cursor = None
        if not text.strip() or (self.entries and self.entries[-1] == text):
            return
        self.entries.append(text)
        del self.entries[: -self.max_entries]
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(text.replace("\\", "\\\\").replace("\n", "\\n") + "\n")
            except OSError as exc:  # history is a convenience; losing it must not break sending
                log.warning("could not save the input history to %s: %s", self.path, exc)

    def prev(self, current: str) -> str | None:
        """The entry before the cursor (None at the oldest)."""
        if not self.entries:
            return None
        if self._cursor is None:
            self._draft = current
            self._cursor = len(self.entries)
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.entries[self._cursor]

    def next(self) -> str | None:
        """The entry after the cursor, the saved draft past the newest, None when not walking."""
        if self._cursor is None:
            return None
        self._cursor += 1
        if self._cursor >= len(self.entries):
            self._cursor = None
            return self._draft
        return self.entries[self._cursor]
