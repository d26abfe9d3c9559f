"""One scheduler per data dir: an exclusive lock on a file in it, held while schedules run.

The TUI and `webhooks serve` both start a scheduler; sharing a data dir, only the process that
holds the lease runs schedules, and the other keeps trying, so it takes over when the holder
exits (the kernel drops a dead process's lock, so nothing goes stale). Where `fcntl` does not
exist (Windows) every process gets the lease, as before.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]  # no locking there: documented above


class Lease:
    """A non-blocking exclusive lock on `path`; `holder()` tells who has it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> bool:
        """Take the lease if it is free; True when this process holds it."""
        if self._file is not None:
            return True
        if fcntl is None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # kept open while held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str:
        """The pid written by the holder, or `?`."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        """Give the lease up (closing the file drops the lock)."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
