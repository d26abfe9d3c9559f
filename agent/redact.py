"""Secret redaction for the application: the one redactor of `tools.redact`, re-exported.

`tools/` cannot import `agent/`, so the redactor lives there (the fal client scrubs its own
error messages with it) and every channel of the application uses the same one: the screen
(`agent.core.turnlog` redacts each event before a UI sees it, streamed tokens included), the
commands' stdout/stderr (`redacting_streams`), `ask --json`, the transcript and its exports,
exception messages, and the model request (`agent.core.llm_http`).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from tools.redact import (
    MASK,
    MIN_PART_LEN,
    MIN_SECRET_LEN,
    SECRET_ENV_VARS,
    SENSITIVE_KEYS,
    Redactor,
    StreamRedactor,
    current,
    env_secrets,
    forget_secrets,
    known_secrets,
    redact,
    redact_text,
    remember_secrets,
    secret_forms,
    secret_parts,
    settings_secrets,
)


class RedactingWriter(io.TextIOBase):
    """A text stream that redacts what is written before passing it on.

    `print` writes its text and its line end separately, so each write is redacted alone: a
    key is never split over two writes by the code that prints it."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(redact_text(text) if text else text)
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase's is a plain attribute; this one follows the inner stream
        return getattr(self._inner, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextlib.contextmanager
def redacting_streams() -> Iterator[None]:
    """Redact everything written to `sys.stdout` and `sys.stderr` while the block runs."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingWriter(out), RedactingWriter(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


__all__ = ["MASK", "MIN_PART_LEN", "MIN_SECRET_LEN", "RedactingWriter", "Redactor", "SECRET_ENV_VARS",
           "SENSITIVE_KEYS", "StreamRedactor", "current", "env_secrets", "forget_secrets", "known_secrets",
           "redact", "redact_text", "redacting_streams", "remember_secrets", "secret_forms", "secret_parts",
           "settings_secrets"]
