"""Scheduled flows: cron-style timers that run a persona prompt or a tool.

They live beside the trigger rules (a persona's ``[[schedules]]`` or the triggers file's)::

    [[schedules]]
    name = "morning-prices"
    cron = "0 9 * * mon-fri"
    timezone = "Europe/Paris"          # optional; default UTC
    persona = "analyst"                # in the triggers file; implied in a persona file
    prompt = "Price fal-ai/flux/dev for 10 images"
    # or: tool = "get_pricing"  args = { endpoint_ids = ["fal-ai/flux/dev"] }

Runs are logged as transcript events of kind ``schedule_run`` with ``ref = "schedule:<name>"``.
A run missed while nothing was running is not made up later; a failed run is not retried
before its next time (the timer is its own retry).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, field_validator, model_validator

from agent.triggers.actions import ActionError, ActionExecutor
from agent.triggers.cron import CronError, CronExpr
from agent.triggers.lease import Lease
from agent.triggers.notices import Subscribers, TriggerNotice
from agent.triggers.rules import Action, load_tables, parse_tables

log = logging.getLogger(__name__)


class Schedule(Action):
    """One timer: a cron expression plus the action it runs."""

    name: str = Field(min_length=1, max_length=100)
    cron: str
    timezone: str | None = None
    persona: str | None = None
    _expr: CronExpr = PrivateAttr()

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        try:
            CronExpr.parse(value)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _compile(self) -> Schedule:
        self._expr = CronExpr.parse(self.cron)
        return self

    def next_run(self, after: float) -> float:
        """Epoch seconds of the first run strictly after `after`."""
        zone = ZoneInfo(self.timezone) if self.timezone else UTC
        moment = datetime.fromtimestamp(after, tz=UTC)
        return self._expr.next_after(moment, zone).timestamp()


def parse_schedules(tables: Iterable[Any], *, source: str, persona: str | None = None) -> list[Schedule]:
    """Validate raw `[[schedules]]` tables; RuleError names the bad one."""
    return parse_tables(Schedule, tables, kind="schedules", source=source, persona=persona)


def load_schedules(path: Path | None = None, *, include_personas: bool = True) -> list[Schedule]:
    """Every schedule: the personas' own, then the triggers file's."""
    return load_tables("schedules", parse_schedules, path, include_personas=include_personas)


class Scheduler:
    """Runs schedules when they are due; :meth:`run_due` does one pass at a given time (for tests)."""

    def __init__(
        self,
        schedules: Sequence[Schedule],
        executor: ActionExecutor,
        *,
        clock: Callable[[], float] = time.time,
        subscribers: Subscribers | None = None,
        max_sleep_s: float = 60.0,
        lease_path: Path | None = None,
        lease_retry_s: float = 30.0,
    ) -> None:
        self.schedules = list(schedules)
        self.executor = executor
        self.clock = clock
        self.subscribers = subscribers or Subscribers()
        self.max_sleep_s = max_sleep_s
        start = clock()
        self.next_runs: dict[str, float] = {s.name: s.next_run(start) for s in self.schedules}
        self.last_results: dict[str, str] = {}
        self.lease_path = lease_path
        self.lease_retry_s = lease_retry_s
        self.lease: Lease | None = None
        self.waiting_for: str | None = None  # the pid holding the lease while this one waits

    async def run_due(self, now: float | None = None) -> list[str]:
        """Run every schedule due at `now`; returns their names. Each then moves to its next time."""
        when = self.clock() if now is None else now
        ran = []
        for schedule in self.schedules:
            if self.next_runs[schedule.name] > when:
                continue
            fields = {"schedule": schedule.name,
                      "now": datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="seconds")}
            try:
                outcome = await self.executor.run(
                    schedule, fields, {}, persona=schedule.persona, kind="schedule_run",
                    ref=f"schedule:{schedule.name}", name=schedule.name)
                detail = outcome
            except ActionError as exc:
                detail = f"failed: {exc}"
            self.last_results[schedule.name] = detail
            self.next_runs[schedule.name] = schedule.next_run(when)
            ran.append(schedule.name)
            self.subscribers.publish(TriggerNotice("schedule_run", f"schedule:{schedule.name}", detail=detail))
        return ran

    async def run(self, stop: asyncio.Event) -> None:
        """Run schedules on time until `stop` is set, once this process holds the data dir's
        scheduler lease (another process may be running them: then wait and take over)."""
        if not self.schedules:
            return
        if self.lease is None:
            from agent.locations import home

            self.lease = Lease(self.lease_path or home() / "scheduler.lock")
        try:
            while not self.lease.acquire():
                holder = self.lease.holder()
                if self.waiting_for != holder:
                    self.waiting_for = holder
                    detail = (f"schedules run in another process (pid {holder}) sharing this data "
                              "dir; this one takes over when it stops")
                    log.info(detail)
                    self.subscribers.publish(TriggerNotice("schedule_run", "schedule:*", detail=detail))
                if await _stopped(stop, self.lease_retry_s):
                    return
            self.waiting_for = None
            await self._run_held(stop)
        finally:
            self.lease.release()

    async def _run_held(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.run_due()
            wait = min(self.next_runs.values()) - self.clock()
            if wait > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(wait, self.max_sleep_s))
                except TimeoutError:
                    pass


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds`; True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
