"""The cron dialect: what each construct fires on, and what each mistake says."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from clocktower.model import InvalidSpec
from clocktower.triggers.base import Trigger
from clocktower.triggers.cron import CronTrigger, describe_cron

START = "2025-01-01T00:00:00+00:00"  # a Wednesday


def fires(
    expr: str, count: int, start: str = START, tz: str = "UTC", job_id: str = ""
) -> list[str]:
    """The next `count` fire times as local "YYYY-MM-DD HH:MM[:SS]"."""
    trigger = CronTrigger(expr, tz, job_id=job_id)
    zone = ZoneInfo(tz)
    ts = datetime.fromisoformat(start).timestamp()
    out = []
    for _ in range(count):
        found = trigger.next_after(ts)
        assert found is not None
        ts = found
        local = datetime.fromtimestamp(ts, zone)
        out.append(local.strftime("%Y-%m-%d %H:%M" + (":%S" if local.second else "")))
    return out


# --------------------------------------------------------------------------- what fires


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        pytest.param("0 9 * JAN,feb MON", ["2025-01-06 09:00", "2025-01-13 09:00"], id="names"),
        pytest.param(
            "0 9 * * mon-Fri",
            ["2025-01-01 09:00", "2025-01-02 09:00", "2025-01-03 09:00", "2025-01-06 09:00"],
            id="name_range_any_case",
        ),
        pytest.param(
            "5-50/20 * * * *",
            ["2025-01-01 00:05", "2025-01-01 00:25", "2025-01-01 00:45", "2025-01-01 01:05"],
            id="range_with_step",
        ),
        pytest.param(
            "50/5 * * * *",
            ["2025-01-01 00:50", "2025-01-01 00:55", "2025-01-01 01:50"],
            id="start_with_step_runs_to_the_end",
        ),
        pytest.param(
            "*/15 * * * *",
            ["2025-01-01 00:15", "2025-01-01 00:30", "2025-01-01 00:45", "2025-01-01 01:00"],
            id="star_step",
        ),
        pytest.param(
            "0 0 1,15 * *", ["2025-01-15 00:00", "2025-02-01 00:00", "2025-02-15 00:00"], id="list"
        ),
        pytest.param(
            "0 0 * */3 *",
            ["2025-01-02 00:00", "2025-01-03 00:00"],
            id="month_step_includes_january",
        ),
        pytest.param(
            "0 0 1 */3 *",
            ["2025-04-01 00:00", "2025-07-01 00:00", "2025-10-01 00:00"],
            id="quarterly",
        ),
        pytest.param(
            "0 0 L * *", ["2025-01-31 00:00", "2025-02-28 00:00", "2025-03-31 00:00"], id="last_day"
        ),
        pytest.param(
            "0 0 L-3 * *",
            ["2025-01-28 00:00", "2025-02-25 00:00", "2025-03-28 00:00"],
            id="L_minus_3",
        ),
        pytest.param(
            "0 0 15W * *",
            ["2025-01-15 00:00", "2025-02-14 00:00", "2025-03-14 00:00", "2025-04-15 00:00"],
            id="nearest_weekday_saturday_to_friday",
        ),
        pytest.param(
            "0 0 15W 6 *",
            ["2025-06-16 00:00", "2026-06-15 00:00"],
            id="nearest_weekday_sunday_to_monday",
        ),
        pytest.param(
            "0 0 1W 2,3 *",
            ["2025-02-03 00:00", "2025-03-03 00:00", "2026-02-02 00:00"],
            id="1W_on_a_saturday_stays_in_the_month",
        ),
        pytest.param(
            "0 0 31W 8 *",
            ["2025-08-29 00:00", "2026-08-31 00:00"],
            id="31W_on_a_sunday_stays_in_the_month",
        ),
        pytest.param(
            "0 0 LW * *",
            [
                "2025-01-31 00:00",
                "2025-02-28 00:00",
                "2025-03-31 00:00",
                "2025-04-30 00:00",
                "2025-05-30 00:00",
            ],
            id="last_weekday",
        ),
        pytest.param(
            "0 0 * * 1#2",
            ["2025-01-13 00:00", "2025-02-10 00:00", "2025-03-10 00:00"],
            id="second_monday",
        ),
        pytest.param(
            "0 0 * * MON#5",
            ["2025-03-31 00:00", "2025-06-30 00:00", "2025-09-29 00:00"],
            id="fifth_monday",
        ),
        pytest.param(
            "0 0 * * 5#-1",
            ["2025-01-31 00:00", "2025-02-28 00:00", "2025-03-28 00:00"],
            id="last_friday_hash",
        ),
        pytest.param(
            "0 0 * * 5L",
            ["2025-01-31 00:00", "2025-02-28 00:00", "2025-03-28 00:00"],
            id="last_friday_L",
        ),
        pytest.param(
            "0 0 * * FRIL", ["2025-01-31 00:00", "2025-02-28 00:00"], id="last_friday_by_name"
        ),
        pytest.param(
            "0 0 * * 1#-2", ["2025-01-20 00:00", "2025-02-17 00:00"], id="second_to_last_monday"
        ),
        pytest.param(
            "0 0 13 * 5",
            ["2025-01-03 00:00", "2025-01-10 00:00", "2025-01-13 00:00", "2025-01-17 00:00"],
            id="day_fields_or_when_both_restricted",
        ),
        pytest.param(
            "0 0 */2 * 1",
            ["2025-01-13 00:00", "2025-01-27 00:00", "2025-02-03 00:00", "2025-02-17 00:00"],
            id="day_fields_and_when_one_starts_with_star",
        ),
        pytest.param(
            "*/20 * * * * *",
            ["2025-01-01 00:00:20", "2025-01-01 00:00:40", "2025-01-01 00:01"],
            id="seconds_field",
        ),
        pytest.param(
            "30 0 9 * * MON",
            ["2025-01-06 09:00:30", "2025-01-13 09:00:30"],
            id="seconds_field_fixed",
        ),
        pytest.param("0 0 29 2 *", ["2028-02-29 00:00", "2032-02-29 00:00"], id="leap_day_only"),
        pytest.param("05 07 * * *", ["2025-01-01 07:05", "2025-01-02 07:05"], id="leading_zeros"),
    ],
)
def test_fire_times(expr: str, expected: list[str]) -> None:
    assert fires(expr, len(expected)) == expected


def test_last_day_of_february_in_a_leap_year() -> None:
    assert fires("0 0 L 2 *", 2, start="2024-01-01T00:00:00+00:00") == [
        "2024-02-29 00:00",
        "2025-02-28 00:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "SUN", "sun"])
def test_zero_and_seven_are_sunday(sunday: str) -> None:
    assert fires(f"0 0 * * {sunday}", 2) == ["2025-01-05 00:00", "2025-01-12 00:00"]


def test_a_range_up_to_seven_ends_on_sunday() -> None:
    assert fires("0 0 * * 5-7", 4) == [
        "2025-01-03 00:00",
        "2025-01-04 00:00",
        "2025-01-05 00:00",
        "2025-01-10 00:00",
    ]


@pytest.mark.parametrize(
    ("macro", "expansion"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("@Hourly", "0 * * * *"),
    ],
)
def test_macros(macro: str, expansion: str) -> None:
    assert fires(macro, 3, tz="Europe/Paris") == fires(expansion, 3, tz="Europe/Paris")
    assert CronTrigger(macro).fixed_time == CronTrigger(expansion).fixed_time


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("60 0 0 * * *", "second: 60 is out of range 0-59"),
        ("0 1-61 * * *", "hour: 61 is out of range 0-23"),
        (
            "0 0 * * FRI-MON",
            "day-of-week: range FRI-MON runs backwards; ranges go low to high, "
            "write FRI,SAT,SUN,MON",
        ),
        (
            "0 0 * * 5-1",
            "day-of-week: range 5-1 runs backwards; ranges go low to high, write 5,6,0,1",
        ),
        (
            "0 0 * NOV-FEB *",
            "month: range NOV-FEB runs backwards; ranges go low to high, write NOV,DEC,JAN,FEB",
        ),
        (
            "0 22-2 * * *",
            "hour: range 22-2 runs backwards; ranges go low to high, write 22,23,0,1,2",
        ),
        (
            "50-10 * * * *",
            "minute: range 50-10 runs backwards; ranges go low to high, write 50-59,0-10",
        ),
        ("0 0 30 2 *", "day-of-month: 30 never occurs in month 2, so this never fires"),
        ("0 0 31 4,6 *", "day-of-month: 31 never occurs in month 4,6, so this never fires"),
        ("0 0 30,31 FEB *", "day-of-month: 30,31 never occurs in month FEB, so this never fires"),
        (
            "0 0 31 4 */2",
            "day-of-month: 31 never falls on day-of-week */2 in month 4, so this never fires",
        ),
        (
            "* * * *",
            "'* * * *' has 4 fields: expected 5 (minute hour day-of-month month day-of-week) "
            "or 6 with seconds first",
        ),
        ("", "the cron expression is empty"),
        ("   ", "the cron expression is empty"),
        ("0 0 12 * * ? 2030", "'0 0 12 * * ? 2030' has 7 fields; a year field is not supported"),
        ("*/0 * * * *", "minute: step 0 in */0 is out of range 1-59"),
        ("*/60 * * * *", "minute: step 60 in */60 is out of range 1-59"),
        ("*/x * * * *", "minute: the step in */x must be a whole number"),
        ("abc * * * *", "minute: abc is not a number"),
        ("0 \u00b2 * * *", "hour: \u00b2 is not a number"),
        ("0 0 \u0663 * *", "day-of-month: \u0663 is not a number"),
        ("-5 * * * *", "minute: -5 is incomplete"),
        ("0 0 * * FOO", "day-of-week: FOO is not a number or a day name (SUN-SAT)"),
        ("0 0 * BRUMAIRE *", "month: BRUMAIRE is not a number or a month name (JAN-DEC)"),
        ("0 0 ? * MON", "day-of-month: ? is not supported; write * for 'any'"),
        ("0 0 1,,15 * *", "day-of-month: 1,,15 has an empty item (two commas, or one at an end)"),
        ("0,5, * * * *", "minute: 0,5, has an empty item (two commas, or one at an end)"),
        ("0 0 * * L", "day-of-week: L needs a day before it, like 5L (the last Friday)"),
        ("0 0 * * 1#6", "day-of-week: 6 in 1#6 is out of range 1-5 (or -1 to -5)"),
        ("0 0 * * 1#x", "day-of-week: 1#x is not day#n, like 1#2 (the second Monday)"),
        ("0 0 L-31 * *", "day-of-month: 31 in L-31 is out of range 1-30"),
        ("0 0 L3 * *", "day-of-month: L3 is not L (the last day), L-n (n days before it) or LW"),
        ("0 0 32W * *", "day-of-month: 32 is out of range 1-31"),
        (
            "0 0 XW * *",
            "day-of-month: XW is not nW (the weekday nearest day n) or LW (the last weekday)",
        ),
        ("H(5) * * * *", "minute: H(5) needs a range inside the parentheses, like H(0-29)"),
        (
            "H(30-10) * * * *",
            "minute: range H(30-10) runs backwards; ranges go low to high, write 30-59,0-10",
        ),
        ("Hx * * * *", "minute: Hx is not H, H(low-high) or either with /step"),
        (
            "@fortnightly",
            "@fortnightly is not a known macro: use one of @yearly, @annually, "
            "@monthly, @weekly, @daily, @midnight, @hourly",
        ),
        ("@reboot", "@reboot is not a schedule (it means 'when cron starts')"),
    ],
)
def test_errors_name_the_field_and_the_bad_token(expr: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        CronTrigger(expr)
    assert caught.value.message == message
    assert caught.value.field == "cron"
    assert isinstance(caught.value, ValueError)


def test_unknown_zone_is_a_tz_error() -> None:
    with pytest.raises(InvalidSpec) as caught:
        CronTrigger("0 0 * * *", "Mars/Olympus_Mons")
    assert caught.value.field == "tz"
    assert "Mars/Olympus_Mons" in caught.value.message


# --------------------------------------------------------------------------- H


def test_h_is_the_same_for_the_same_job() -> None:
    assert fires("H H * * *", 3, job_id="nightly-report") == fires(
        "H H * * *", 3, job_id="nightly-report"
    )


def test_h_is_the_same_in_another_process() -> None:
    code = (
        "from clocktower.triggers.cron import CronTrigger;"
        "print(CronTrigger('H H H * *', job_id='nightly-report').next_after(1735689600))"
    )
    here = CronTrigger("H H H * *", job_id="nightly-report").next_after(1735689600)
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert float(out.stdout) == here


def test_h_spreads_jobs_over_the_hour() -> None:
    minutes = {
        datetime.fromtimestamp(
            CronTrigger("H * * * *", job_id=f"job-{i}").next_after(0) or 0, UTC
        ).minute
        for i in range(50)
    }
    assert len(minutes) > 25


def test_h_with_a_range_stays_in_it() -> None:
    for i in range(60):
        trigger = CronTrigger("H(0-29) H(9-17) * * *", job_id=f"job-{i}")
        assert max(trigger.fields.minutes) <= 29
        assert set(trigger.fields.hours) <= set(range(9, 18))
        assert len(trigger.fields.minutes) == len(trigger.fields.hours) == 1


def test_h_with_a_step_starts_at_a_hashed_offset() -> None:
    offsets = set()
    for i in range(40):
        minutes = CronTrigger("H/15 * * * *", job_id=f"job-{i}").fields.minutes
        assert len(minutes) == 4
        assert [b - a for a, b in itertools.pairwise(minutes)] == [15, 15, 15]
        offsets.add(minutes[0])
    assert len(offsets) > 5 and max(offsets) < 15


def test_h_in_day_fields_picks_days_every_month_has() -> None:
    for i in range(60):
        fields = CronTrigger("0 0 H * H", job_id=f"job-{i}").fields
        days = [d for d in range(1, 32) if fields.dom.days >> d & 1]
        weekdays = [d for d in range(7) if fields.dow.days >> d & 1]
        assert len(days) == 1 and 1 <= days[0] <= 28
        assert len(weekdays) == 1


def test_h_without_a_job_id_is_deterministic() -> None:
    assert CronTrigger("H H * * *").fields.minutes == CronTrigger("H H * * *").fields.minutes


def test_h_shows_in_the_description() -> None:
    trigger = CronTrigger("H H * * *", job_id="nightly-report")
    hour, minute = trigger.fields.hours[0], trigger.fields.minutes[0]
    assert trigger.describe() == f"At {hour:02d}:{minute:02d}, UTC"


# --------------------------------------------------------------------------- the API


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [
        ("30 2 * * *", True),
        ("0 30 2 * * *", True),
        ("*/10 30 2 * * *", True),
        ("0 2,14 * * *", True),
        ("H H * * *", True),
        ("@daily", True),
        ("*/15 * * * *", False),
        ("0 * * * *", False),
        ("* 2 * * *", False),
        ("0 */2 * * *", False),
        ("@hourly", False),
    ],
)
def test_fixed_time(expr: str, fixed: bool) -> None:
    assert CronTrigger(expr).fixed_time is fixed


def test_the_trigger_interface() -> None:
    trigger = CronTrigger("0 6 * * MON", "Europe/Paris", job_id="weekly-summary")
    assert isinstance(trigger, Trigger)
    assert trigger.expr == "0 6 * * MON"
    assert trigger.zone == ZoneInfo("Europe/Paris")
    assert trigger.skip_reason(1_750_000_000) is None
    assert trigger.describe() == "At 06:00 on Monday, Europe/Paris"
    assert describe_cron("0 6 * * MON", "Europe/Paris") == "At 06:00 on Monday, Europe/Paris"


def test_next_after_is_strictly_later_and_whole_seconds() -> None:
    trigger = CronTrigger("* * * * * *")
    assert trigger.next_after(100.0) == 101.0
    assert trigger.next_after(100.25) == 101.0
    assert trigger.next_after(-0.5) == 0.0
    every_minute = CronTrigger("* * * * *")
    assert every_minute.next_after(60.0) == 120.0
    assert every_minute.next_after(59.999) == 60.0


def test_next_after_has_an_end() -> None:
    trigger = CronTrigger("0 0 1 1 *")
    last = datetime(9998, 1, 1, tzinfo=UTC).timestamp()
    assert trigger.next_after(last - 1) == last
    assert trigger.next_after(last) is None
    assert trigger.next_after(float("inf")) is None
    with pytest.raises(ValueError, match="NaN"):
        trigger.next_after(float("nan"))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Pacific/Chatham"])
@pytest.mark.parametrize("expr", ["0 0 29 2 *", "*/30 2 * 3 SUN#5", "* * * * *", "0 0 L * *"])
def test_searches_near_the_last_supported_year_end(expr: str, zone: str) -> None:
    trigger = CronTrigger(expr, zone)
    ts = datetime(9998, 12, 1, tzinfo=UTC).timestamp()
    for _ in range(5):
        found = trigger.next_after(ts)
        if found is None:
            break
        assert found > ts
        ts = found
    assert trigger.next_after(datetime(9998, 12, 31, 23, tzinfo=UTC).timestamp() + 7200) is None


def test_very_early_instants_start_from_the_first_supported_year() -> None:
    found = CronTrigger("0 0 1 1 *").next_after(-1e15)
    assert found is not None
    assert datetime.fromtimestamp(found, UTC).isoformat() == "0002-01-01T00:00:00+00:00"


def test_an_expression_that_dst_makes_impossible_ends_with_none() -> None:
    # The fifth Sunday of March is always the day Europe's clocks skip 02:00-03:00.
    trigger = CronTrigger("*/30 2 * 3 SUN#5", "Europe/Paris")
    assert trigger.next_after(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) is None
    # As a fixed time it moves to the end of the gap instead.
    fixed = CronTrigger("30 2 * 3 SUN#5", "Europe/Paris")
    found = fixed.next_after(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    assert found == datetime.fromisoformat("2025-03-30T03:00:00+02:00").timestamp()


def test_rare_dates_are_found_decades_ahead() -> None:
    # Monday 29 February: 2044, then 2072, then (2100 is not a leap year) 2112.
    trigger = CronTrigger("0 0 * 2 MON#5")
    ts = datetime(2045, 1, 1, tzinfo=UTC).timestamp()
    first = trigger.next_after(ts)
    assert first is not None
    second = trigger.next_after(first)
    assert second is not None
    assert [datetime.fromtimestamp(t, UTC).date().isoformat() for t in (first, second)] == [
        "2072-02-29",
        "2112-02-29",
    ]
