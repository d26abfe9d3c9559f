"""The action worker: runs the rules for stored events, off the request path.

The listener only stores and acknowledges. This worker reads due rows from the inbox (pending
ones, and failed ones whose back-off has passed), runs every matching rule's action, and
settles the row: ``done``, ``failed`` with ``next_attempt_at`` pushed out exponentially, or
``dead`` after the rule's ``max_attempts`` (or at once for an error that cannot heal).
Because the state lives in the inbox, a restarted process resumes exactly where the last one
stopped; an action that was mid-flight when the process died runs again (at-least-once), and
rules that already succeeded for an event are skipped on a retry.

The clock is injected, and :meth:`ActionWorker.process_due` does one pass, so tests drive
retries and dead-lettering with no real sleeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.triggers.actions import ActionError, ActionExecutor
from agent.triggers.inbox import EventRow, Inbox
from agent.triggers.notices import NoticeKind, Subscribers, TriggerNotice
from agent.triggers.rules import EventView, Rule

log = logging.getLogger(__name__)

NO_RULE_MATCHED = "no rule matched"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: base_s, base_s*factor, ... capped at cap_s."""

    base_s: float = 5.0
    factor: float = 2.0
    cap_s: float = 900.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure (1-based)."""
        return min(self.cap_s, self.base_s * self.factor ** max(0, attempts - 1))


class ActionWorker:
    """Processes due inbox rows with the rules; see the module docstring."""

    def __init__(
        self,
        inbox: Inbox,
        rules: Sequence[Rule],
        executor: ActionExecutor,
        *,
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
        subscribers: Subscribers | None = None,
        idle_poll_s: float = 30.0,
        gather_s: float = 0.02,
    ) -> None:
        self.inbox = inbox
        self.rules = list(rules)
        self.executor = executor
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.subscribers = subscribers or Subscribers()
        self.idle_poll_s = idle_poll_s
        # After a wake, let a burst of arrivals gather for a moment: one pass (a read and one
        # settle commit) then serves many rows instead of one pass per stored batch, which
        # under load cost more CPU than storing the events did.
        self.gather_s = gather_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A new event is stored: look now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process due rows until `stop` is set; resumes pending/failed rows left by a crash."""
        batch = 200
        while not stop.is_set():
            self._wake.clear()
            try:
                if await self.process_due(batch=batch) >= batch:
                    continue  # more rows are due right now
            except Exception as exc:  # a broken database must not kill the loop; the next pass retries
                log.error("trigger worker: a pass over due events failed (retried): %s: %s", type(exc).__name__, exc)
            next_due = await asyncio.to_thread(self.inbox.next_due_at)
            wait = self.idle_poll_s if next_due is None else max(0.0, next_due - self.clock())
            if wait > 0:
                waker = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waker, stopper}, timeout=min(wait, self.idle_poll_s),
                                   return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                stopper.cancel()
                if self._wake.is_set() and not stop.is_set() and self.gather_s > 0:
                    await asyncio.sleep(self.gather_s)

    async def process_due(self, now: float | None = None, batch: int = 200) -> int:
        """One pass over rows due at `now`; returns how many rows were settled."""
        when = self.clock() if now is None else now
        rows = await asyncio.to_thread(self.inbox.due, when, batch)
        quiet: list[tuple[str, str, int, str | None, str | None, float, float]] = []
        for row in rows:
            view = self._view(row) if self.rules else None
            matched = [rule for rule in self.rules if rule.matches(view)] if view else []
            if not matched or view is None:  # (no view matches no rule)
                note = NO_RULE_MATCHED if view or not self.rules else "stored body unreadable"
                quiet.append((row.request_id, "done", row.attempts, None, note, when, when))
                self._publish("done", row, view, note)
                continue
            await self._run_rules(row, view, matched, when)
        if quiet:  # rows without actions settle together: one commit for the lot
            await asyncio.to_thread(self.inbox.settle, quiet)
        return len(rows)

    @staticmethod
    def _view(row: EventRow) -> EventView | None:
        try:
            body = json.loads(row.body)
        except ValueError:
            return None
        return EventView(row.request_id, row.status, row.endpoint_id, body)

    async def _run_rules(self, row: EventRow, view: EventView, rules: list[Rule], now: float) -> None:
        attempt = row.attempts + 1
        if row.attempts == 0:
            self.executor.record("trigger_event", {**view.fields(), "rules": [r.name for r in rules]},
                                 persona=rules[0].persona, ref=row.request_id)
        done = await asyncio.to_thread(self.inbox.rules_done, row.request_id)
        outcomes, errors, max_attempts, permanent = [], [], 50, False
        for rule in rules:
            if rule.name in done:
                continue
            try:
                outcome = await self.executor.run(
                    rule, view.fields(), view.body, persona=rule.persona, kind="trigger_action",
                    ref=row.request_id, name=rule.name, attempt=attempt)
            except ActionError as exc:
                errors.append(f"{rule.name}: {exc}")
                max_attempts = min(max_attempts, rule.max_attempts)
                permanent = permanent or not exc.retryable
                continue
            await asyncio.to_thread(self.inbox.mark_rule_done, row.request_id, rule.name, self.clock())
            outcomes.append(f"{rule.name}: {outcome}")
        summary = "; ".join(outcomes) or None
        state: NoticeKind
        if not errors:
            state, error, next_at = "done", None, now
        elif permanent or attempt >= max_attempts:
            state, error, next_at = "dead", "; ".join(errors)[:1000], now
        else:
            state, error, next_at = "failed", "; ".join(errors)[:1000], now + self.policy.delay(attempt)
        await asyncio.to_thread(
            self.inbox.settle, [(row.request_id, state, attempt, error, summary, next_at, self.clock())])
        self._publish(state, row, view, error or summary or "")

    def _publish(self, kind: NoticeKind, row: EventRow, view: EventView | None, detail: str) -> None:
        if not self.subscribers.active:
            return
        self.subscribers.publish(TriggerNotice(
            kind=kind, request_id=row.request_id, status=row.status,
            endpoint_id=view.endpoint_id if view else row.endpoint_id, detail=detail))
