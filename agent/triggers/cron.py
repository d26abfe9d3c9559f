"""Five-field cron expressions: parse once, then compute the next run after a moment.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week
(0-7 or sun-sat; 0 and 7 are Sunday). Each field takes ``*``, ``N``, ``A-B``, lists ``A,B``
and steps ``*/S`` / ``A-B/S`` / ``A/S``. As in Vixie cron, when both day fields are restricted
a day matches if *either* does. Macros: ``@hourly @daily @midnight @weekly @monthly @yearly
@annually``.

Times are wall-clock times in the given timezone (UTC by default). A wall time that does not
exist (a DST gap) is run at the equivalent instant after the gap.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_SEARCH_YEARS = 8  # long enough for "29 Feb on a Monday"; beyond it the expression never fires


class CronError(ValueError):
    """A cron expression that cannot be parsed, or that never fires."""


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    """One number or name, range-checked."""
    if text.lower() in names:
        return names[text.lower()]
    if not text.isascii() or not text.isdigit():
        raise CronError(f"{text!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{number} is outside {low}-{high}")
    return number


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """The set of values one field allows."""
    names = names or {}
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError("empty list item")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            step = _value(step_text, 1, high - low + 1 if high > low else 1, {})
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, low, high, names), _value(b, low, high, names)
            if start > end:
                raise CronError(f"range {base} runs backwards")
        else:
            start = _value(base, low, high, names)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpr:
    """A parsed cron expression; :meth:`next_after` gives the next firing time."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        """Parse five fields or a macro; CronError says what is wrong."""
        if not isinstance(text, str):
            raise CronError("a cron expression must be a string")
        expanded = MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        if len(parts) != 5:
            raise CronError(f"{text!r}: expected 5 fields, got {len(parts)}")
        try:
            minutes = _field(parts[0], 0, 59)
            hours = _field(parts[1], 0, 23)
            days = _field(parts[2], 1, 31)
            months = _field(parts[3], 1, 12, _MONTHS)
            weekdays = frozenset(d % 7 for d in _field(parts[4], 0, 7, _DAYS))
        except CronError as exc:
            raise CronError(f"{text!r}: {exc}") from None
        expr = cls(
            text=text.strip(),
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            day_restricted=not parts[2].startswith("*"),
            weekday_restricted=not parts[4].startswith("*"),
        )
        expr.next_after(datetime(2000, 1, 1, tzinfo=timezone.utc))  # "30 2" never fires: say so now
        return expr

    def _day_ok(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays  # Python: Monday=0; cron: Sunday=0
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, moment: datetime, tz: tzinfo | None = None) -> datetime:
        """The first firing time strictly after `moment` (aware), in `tz` (default UTC)."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        zone = tz or timezone.utc
        local = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        t = local + timedelta(minutes=1)
        limit = t + timedelta(days=366 * _SEARCH_YEARS)
        while t < limit:
            if t.month not in self.months:
                # Jump to the first day of the next month.
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
                continue
            if not self._day_ok(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            found = t.replace(tzinfo=zone)
            # Round-trip through UTC to normalise wall times that fall in a DST gap.
            result = found.astimezone(timezone.utc).astimezone(zone)
            if result <= moment:
                t += timedelta(minutes=1)
                continue
            return result
        raise CronError(f"{self.text!r} never fires")
