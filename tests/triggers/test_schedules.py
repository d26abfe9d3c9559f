"""Cron parsing, next-run computation, the scheduler with a hand-moved clock, and the CLI lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agent import locations
from agent.cli import main
from agent.triggers.actions import ActionExecutor
from agent.triggers.cron import CronError, CronExpr
from agent.triggers.inbox import Inbox, NewEvent
from agent.triggers.schedules import Scheduler, parse_schedules
from tests.triggers.support import FakeClock, fal_body

UTC = UTC


def nxt(expr, *args, tz=None):
    return CronExpr.parse(expr).next_after(datetime(*args, tzinfo=UTC), tz)


@pytest.mark.parametrize("expr,start,expected", [
    ("* * * * *", (2030, 1, 1, 0, 0, 30), (2030, 1, 1, 0, 1)),
    ("*/15 * * * *", (2030, 1, 1, 0, 15), (2030, 1, 1, 0, 30)),
    ("0 9 * * mon-fri", (2030, 1, 4, 9, 0), (2030, 1, 7, 9, 0)),  # Fri 09:00 -> Mon
    ("30 2 1 * *", (2030, 1, 31, 12, 0), (2030, 2, 1, 2, 30)),
    ("0 0 29 2 *", (2030, 3, 1, 0, 0), (2032, 2, 29, 0, 0)),
    ("0 0 1 jan *", (2030, 6, 1, 0, 0), (2031, 1, 1, 0, 0)),
    ("5-10/5 1,3 * * *", (2030, 1, 1, 1, 10), (2030, 1, 1, 3, 5)),
    ("0 12 13 * 5", (2030, 1, 1, 0, 0), (2030, 1, 4, 12, 0)),  # dom OR dow: Friday the 4th first
    ("0 0 * * 7", (2030, 1, 1, 0, 0), (2030, 1, 6, 0, 0)),  # 7 is Sunday too
    ("@daily", (2030, 12, 31, 23, 59), (2031, 1, 1, 0, 0)),
    ("@hourly", (2030, 1, 1, 0, 0), (2030, 1, 1, 1, 0)),
])
def test_next_run(expr, start, expected):
    assert nxt(expr, *start) == datetime(*expected, tzinfo=UTC)


def test_next_run_in_a_timezone_including_a_dst_gap():
    paris = ZoneInfo("Europe/Paris")
    got = nxt("0 9 * * *", 2030, 1, 1, 0, 0, tz=paris)
    assert got == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    # 2030-03-31 02:30 does not exist in Paris: it runs when the gap ends, 03:00 local (01:00 UTC).
    gap = nxt("30 2 * * *", 2030, 3, 30, 12, 0, tz=paris)
    assert gap.astimezone(UTC) == datetime(2030, 3, 31, 1, 0, tzinfo=UTC)
    assert gap.hour == 3 and gap.minute == 0


def test_a_repeated_wall_time_runs_once_and_minute_steps_keep_going():
    paris = ZoneInfo("Europe/Paris")
    expr = CronExpr.parse("30 2 * * *")
    # 2030-10-27 02:30 happens twice in Paris (00:30 and 01:30 UTC): the daily job runs once.
    first = expr.next_after(datetime(2030, 10, 26, 12, 0, tzinfo=UTC), paris)
    second = expr.next_after(first, paris)
    assert first.astimezone(UTC) == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)
    assert second.astimezone(UTC) == datetime(2030, 10, 28, 1, 30, tzinfo=UTC)
    every = CronExpr.parse("*/30 * * * *")
    t, seen = datetime(2030, 10, 27, 0, 0, tzinfo=UTC), []
    for _ in range(4):
        t = every.next_after(t, paris)
        seen.append(t.astimezone(UTC).strftime("%H:%M"))
    assert seen == ["00:30", "01:00", "01:30", "02:00"]  # no hour skipped, none doubled


def test_the_expression_is_kept_and_macros_expand():
    expr = CronExpr.parse("  @Daily ")
    assert expr.text == "@Daily" and expr.fields == "0 0 * * *"
    assert nxt("0 0 L * *", 2030, 2, 1, 0, 0) == datetime(2030, 2, 28, tzinfo=UTC)
    with pytest.raises(CronError, match="expected 5 fields"):
        CronExpr.parse("0 * * * * *")  # no seconds field
    with pytest.raises(ValueError, match="aware"):
        expr.next_after(datetime(2030, 1, 1))


@pytest.mark.parametrize("expr", ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                                  "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *",
                                  "a * * * *", "1,,2 * * * *", "0 0 30 2 *", "0 0 31 4,6 *", "@often"])
def test_bad_expressions_raise_cron_error(expr):
    with pytest.raises(CronError):
        CronExpr.parse(expr)


def test_next_runs_are_strictly_increasing_over_a_year():
    expr = CronExpr.parse("7 */5 * * 1,3")
    t = datetime(2030, 1, 1, tzinfo=UTC)
    for _ in range(200):
        n = expr.next_after(t)
        assert n > t and n.minute == 7 and n.hour % 5 == 0 and n.isoweekday() in (1, 3)
        t = n


async def test_scheduler_runs_due_schedules_and_logs_schedule_run():
    clock = FakeClock(datetime(2030, 1, 1, 8, 59, 30, tzinfo=UTC).timestamp())
    prompts, records = [], []

    async def runner(persona, text, approve):
        prompts.append((persona, text))
        return "fine"

    class Rec:
        def new_session(self, user, persona, source="tui"):
            return "s"

        def record(self, sid, kind, data, *, user, persona, duration_s=None, ref=None):
            records.append((kind, ref, data.get("outcome")))

    schedules = parse_schedules([{"name": "morning", "cron": "0 9 * * *", "prompt": "report {now}"}],
                                source="t", persona="analyst")
    scheduler = Scheduler(schedules, ActionExecutor(prompt_runner=runner, transcript=Rec()), clock=clock)
    assert await scheduler.run_due() == []
    clock.advance(30)
    assert await scheduler.run_due() == ["morning"]
    assert prompts == [("analyst", "report 2030-01-01T09:00:00+00:00")]
    assert records == [("schedule_run", "schedule:morning", "prompt answered")]
    assert scheduler.next_runs["morning"] == datetime(2030, 1, 2, 9, tzinfo=UTC).timestamp()
    assert await scheduler.run_due() == []  # once per firing


def test_schedule_with_bad_cron_names_the_schedule():
    from agent.triggers.rules import RuleError

    with pytest.raises(RuleError, match=r"schedules\[0\] \(x\).*cron"):
        parse_schedules([{"name": "x", "cron": "99 * * * *", "prompt": "p"}], source="t")


def test_schedules_list_cli_shows_next_run(capsys):
    locations.triggers_file().write_text(
        '[[schedules]]\nname = "nightly"\ncron = "0 3 * * *"\npersona = "producer"\nprompt = "tidy up"\n'
        '[[schedules]]\nname = "prices"\ncron = "*/10 * * * *"\ntool = "get_pricing"\n'
        'args = { endpoint_ids = ["fal-ai/flux/dev"] }\n')
    assert main(["schedules", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"nightly", "prices"}
    assert rows["nightly"]["next_run"].endswith("T03:00:00Z") and rows["prices"]["action"] == "tool"
    assert main(["schedules", "list"]) == 0
    assert "nightly" in capsys.readouterr().out


def test_webhooks_list_json_via_cli(capsys):
    inbox = Inbox()
    inbox.add(NewEvent("r1", 1_800_000_000.0, "OK", fal_body("r1"), "u", "fal-ai/flux/dev"))
    inbox.add(NewEvent("r2", 1_800_000_001.0, "ERROR", fal_body("r2", status="ERROR", payload={}), "u"))
    inbox.settle([("r2", "dead", 5, "fetch: boom", None, 1.0, 2.0)])
    inbox.close()
    assert main(["webhooks", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["request_id"] for r in rows] == ["r2", "r1"]
    assert rows[0]["status"] == "ERROR" and rows[0]["state"] == "dead"
    assert rows[0]["attempts"] == 5 and rows[0]["last_error"] == "fetch: boom"
    assert rows[1]["state"] == "pending" and rows[1]["endpoint_id"] == "fal-ai/flux/dev"
    assert main(["webhooks", "list"]) == 0
    assert "dead" in capsys.readouterr().out


def test_broken_triggers_file_is_a_one_line_cli_error(capsys):
    locations.triggers_file().write_text('[[schedules]]\nname = "x"\ncron = "bad"\nprompt = "p"\n')
    assert main(["schedules", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fal-persona: ") and "cron" in err and err.count("\n") == 1
