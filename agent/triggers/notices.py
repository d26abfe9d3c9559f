"""Notices the listener publishes (an event arrived; its actions settled) to in-process subscribers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

NoticeKind = Literal["received", "duplicate", "done", "failed", "dead", "schedule_run"]


@dataclass(frozen=True)
class TriggerNotice:
    """Something happened to a webhook event or schedule; UIs show it (jobs panel, chat notice)."""

    kind: NoticeKind
    request_id: str
    status: str | None = None
    endpoint_id: str | None = None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


log = logging.getLogger(__name__)

Callback = Callable[[TriggerNotice], None]


class Subscribers:
    """A thread-safe set of callbacks; one failing callback never stops the others or the listener."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Add `callback`; returns a function that removes it again."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    @property
    def active(self) -> bool:
        """True if anyone is subscribed (lets hot paths skip building notices)."""
        return bool(self._callbacks)

    def publish(self, notice: TriggerNotice) -> None:
        """Call every subscriber with `notice` (in the caller's thread)."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(notice)
            except Exception:  # a UI bug must not break webhook handling
                log.exception("trigger notice %s %s: a subscriber failed", notice.kind, notice.request_id)
