"""Five-field cron expressions: parse once, then compute the next run after a moment.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week
(0-7 or sun-sat; 0 and 7 are Sunday). Each field takes ``*``, ``N``, ``A-B``, lists ``A,B``
and steps ``*/S`` / ``A-B/S``; ``L`` (last day of the month) and ``DOW#N`` (the Nth weekday
of the month) work too. As in Vixie cron, when both day fields are restricted a day matches if
*either* does. Macros: ``@hourly @daily @midnight @weekly @monthly @yearly @annually``.

Times are wall-clock times in the given timezone (UTC by default), evaluated as Debian's cron
does: a wall time skipped by a DST jump runs when the gap ends (02:30 runs at 03:00 when the
clocks go from 02:00 to 03:00), and a wall time that happens twice when the clocks go back runs
once; a `*/N` minute schedule keeps firing through the repeated hour.

The matching is `cronsim`'s. It was chosen over `croniter` after trying both on this module's
cases: croniter fires a daily ``30 2 * * *`` twice on a fall-back day, reads the reversed range
``5-1`` as a wrap-around, and only finds that ``0 0 30 2 *`` never fires when asked for a date;
cronsim runs it once and rejects the other two when parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from cronsim import CronSim, CronSimError

from tools.errors import AppError

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# A moment every parsed expression is tried from once, so "never fires" is found when parsing.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


class CronError(AppError, ValueError):
    """A cron expression that cannot be parsed, or that never fires."""


@dataclass(frozen=True)
class CronExpr:
    """A parsed cron expression; :meth:`next_after` gives the next firing time."""

    text: str
    """The expression as written (stripped)."""
    fields: str
    """The five fields it stands for (a macro expanded)."""

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        """Parse five fields or a macro; CronError says what is wrong."""
        if not isinstance(text, str):
            raise CronError("a cron expression must be a string")
        expanded = MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        # cronsim also takes a sixth (seconds) field; schedules run at minute resolution.
        if len(parts) != 5:
            raise CronError(f"{text!r}: expected 5 fields, got {len(parts)}")
        expr = cls(text=text.strip(), fields=" ".join(parts))
        expr.next_after(_PROBE)
        return expr

    def next_after(self, moment: datetime, tz: tzinfo | None = None) -> datetime:
        """The first firing time strictly after `moment` (aware), in `tz` (default UTC)."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        start = moment.astimezone(tz or UTC)
        try:
            found = next(CronSim(self.fields, start))
        except CronSimError as exc:
            raise CronError(f"{self.text!r}: {str(exc).lower() or 'not a valid expression'}") from None
        except StopIteration:
            raise CronError(f"{self.text!r} never fires") from None
        return found
