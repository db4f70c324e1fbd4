"""Cron fire times across DST transitions, in named cases checked by hand.

Each case lists the fire times a user would see on the wall clock (with the
UTC offset, so the instant is unambiguous). Where cronsim's semantics are the
same as ours, the case is also checked against cronsim; where they differ,
the case says why.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from clocktower.triggers.base import fire_times
from clocktower.triggers.cron import CronTrigger


@dataclass(frozen=True)
class Case:
    id: str
    expr: str
    zone: str
    start: str  # ISO-8601 with offset
    expected: tuple[str, ...]  # local ISO-8601 with offset
    cronsim_agrees: bool = True


CASES = [
    # Europe/Paris 2025-03-30: 02:00 CET -> 03:00 CEST. 2025-10-26: 03:00 CEST -> 02:00 CET.
    Case(
        "paris_spring_gap",
        "30 2 * * *",
        "Europe/Paris",
        "2025-03-29T12:00:00+01:00",
        ("2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"),
    ),
    Case(
        "paris_spring_gap_collapses",
        "0,30 2 * * *",
        "Europe/Paris",
        "2025-03-29T12:00:00+01:00",
        ("2025-03-30T03:00:00+02:00", "2025-03-31T02:00:00+02:00", "2025-03-31T02:30:00+02:00"),
    ),
    Case(
        "paris_spring_gap_asked_at_its_last_second",
        "30 2 * * *",
        "Europe/Paris",
        "2025-03-30T01:59:59+01:00",
        ("2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"),
    ),
    Case(
        "paris_spring_gap_asked_at_its_end",
        "30 2 * * *",
        "Europe/Paris",
        "2025-03-30T03:00:00+02:00",
        ("2025-03-31T02:30:00+02:00",),
    ),
    Case(
        "paris_fall_repeat",
        "30 2 * * *",
        "Europe/Paris",
        "2025-10-25T12:00:00+02:00",
        ("2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"),
    ),
    Case(
        "paris_every_15_spring",
        "*/15 * * * *",
        "Europe/Paris",
        "2025-03-30T01:30:00+01:00",
        ("2025-03-30T01:45:00+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T03:15:00+02:00"),
    ),
    Case(
        "paris_every_15_fall",
        "*/15 * * * *",
        "Europe/Paris",
        "2025-10-26T02:30:00+02:00",
        (
            "2025-10-26T02:45:00+02:00",
            "2025-10-26T02:00:00+01:00",
            "2025-10-26T02:15:00+01:00",
            "2025-10-26T02:30:00+01:00",
            "2025-10-26T02:45:00+01:00",
            "2025-10-26T03:00:00+01:00",
        ),
    ),
    # A seconds field does not make a fixed time follow real time (cronsim skips the gap).
    Case(
        "paris_seconds_field_spring_gap",
        "0 30 2 * * *",
        "Europe/Paris",
        "2025-03-29T12:00:00+01:00",
        ("2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"),
        cronsim_agrees=False,
    ),
    Case(
        "paris_seconds_field_fall_repeat",
        "15 30 2 * * *",
        "Europe/Paris",
        "2025-10-25T12:00:00+02:00",
        ("2025-10-26T02:30:15+02:00", "2025-10-27T02:30:15+01:00"),
        cronsim_agrees=False,
    ),
    # Europe/Berlin, same dates.
    Case(
        "berlin_spring_gap",
        "0 2 * * *",
        "Europe/Berlin",
        "2025-03-29T12:00:00+01:00",
        ("2025-03-30T03:00:00+02:00", "2025-03-31T02:00:00+02:00"),
    ),
    Case(
        "berlin_fall_repeat",
        "0 2 * * *",
        "Europe/Berlin",
        "2025-10-25T12:00:00+02:00",
        ("2025-10-26T02:00:00+02:00", "2025-10-27T02:00:00+01:00"),
    ),
    Case(
        "berlin_hourly_fall",  # @hourly follows real time: 02:00 happens twice
        "0 * * * *",
        "Europe/Berlin",
        "2025-10-26T01:30:00+02:00",
        ("2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00", "2025-10-26T03:00:00+01:00"),
    ),
    # America/New_York 2025-03-09: 02:00 EST -> 03:00 EDT. 2025-11-02: 02:00 EDT -> 01:00 EST.
    Case(
        "new_york_spring_gap",
        "30 2 * * *",
        "America/New_York",
        "2025-03-08T12:00:00-05:00",
        ("2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"),
    ),
    Case(
        "new_york_fall_repeat",
        "30 1 * * *",
        "America/New_York",
        "2025-11-01T12:00:00-04:00",
        ("2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"),
    ),
    # Asked during the second 01:xx: today's 01:30 already fired (cronsim returns it
    # again, an instant before the start).
    Case(
        "new_york_fall_start_in_repeat",
        "30 1 * * *",
        "America/New_York",
        "2025-11-02T01:10:00-05:00",
        ("2025-11-03T01:30:00-05:00", "2025-11-04T01:30:00-05:00"),
        cronsim_agrees=False,
    ),
    Case(
        "new_york_every_30_fall",
        "*/30 * * * *",
        "America/New_York",
        "2025-11-02T00:45:00-04:00",
        (
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:30:00-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T01:30:00-05:00",
            "2025-11-02T02:00:00-05:00",
        ),
    ),
    Case(
        "new_york_every_30_spring",
        "*/30 * * * *",
        "America/New_York",
        "2025-03-09T01:00:00-05:00",
        ("2025-03-09T01:30:00-05:00", "2025-03-09T03:00:00-04:00", "2025-03-09T03:30:00-04:00"),
    ),
    # Australia/Lord_Howe shifts by 30 minutes: 2025-04-06 02:00 -> 01:30,
    # 2025-10-05 02:00 -> 02:30.
    Case(
        "lord_howe_spring_gap",
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2025-10-04T12:00:00+10:30",
        ("2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"),
    ),
    Case(
        "lord_howe_fall_repeat",
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2025-04-05T12:00:00+11:00",
        ("2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"),
    ),
    Case(
        "lord_howe_every_10_fall",
        "*/10 * * * *",
        "Australia/Lord_Howe",
        "2025-04-06T01:25:00+11:00",
        (
            "2025-04-06T01:30:00+11:00",
            "2025-04-06T01:40:00+11:00",
            "2025-04-06T01:50:00+11:00",
            "2025-04-06T01:30:00+10:30",
            "2025-04-06T01:40:00+10:30",
        ),
    ),
    # 03:00-03:29 exist on the spring day; cronsim steps whole hours from 02:00
    # (which does not exist) and lands on 03:30.
    Case(
        "lord_howe_hour_after_gap",
        "*/20 3 * * *",
        "Australia/Lord_Howe",
        "2025-10-05T01:00:00+10:30",
        ("2025-10-05T03:00:00+11:00", "2025-10-05T03:20:00+11:00", "2025-10-05T03:40:00+11:00"),
        cronsim_agrees=False,
    ),
    # America/Santiago 2025-09-07: 00:00 -04 -> 01:00 -03 (no local midnight).
    # 2025-04-06: 00:00 -03 -> 2025-04-05 23:00 -04 (23:xx twice).
    Case(
        "santiago_no_midnight",
        "0 0 * * *",
        "America/Santiago",
        "2025-09-06T12:00:00-04:00",
        ("2025-09-07T01:00:00-03:00", "2025-09-08T00:00:00-03:00"),
    ),
    Case(
        "santiago_no_midnight_real_time",  # hour 0 does not exist on the 7th
        "*/30 0 * * *",
        "America/Santiago",
        "2025-09-06T12:00:00-04:00",
        ("2025-09-08T00:00:00-03:00", "2025-09-08T00:30:00-03:00"),
    ),
    Case(
        "santiago_no_midnight_day_field",  # cronsim shows 00:00 -04, the same instant
        "*/30 * 7 9 *",
        "America/Santiago",
        "2025-09-06T12:00:00-04:00",
        ("2025-09-07T01:00:00-03:00", "2025-09-07T01:30:00-03:00"),
    ),
    Case(
        "santiago_fall_repeat",
        "30 23 * * *",
        "America/Santiago",
        "2025-04-05T12:00:00-03:00",
        ("2025-04-05T23:30:00-03:00", "2025-04-06T23:30:00-04:00"),
    ),
    Case(
        "santiago_every_30_fall",
        "*/30 23 * * *",
        "America/Santiago",
        "2025-04-05T22:50:00-03:00",
        (
            "2025-04-05T23:00:00-03:00",
            "2025-04-05T23:30:00-03:00",
            "2025-04-05T23:00:00-04:00",
            "2025-04-05T23:30:00-04:00",
            "2025-04-06T23:00:00-04:00",
        ),
    ),
    # Pacific/Chatham (+12:45/+13:45) 2025-09-28: 02:45 -> 03:45; 2025-04-06: 03:45 -> 02:45.
    Case(
        "chatham_spring_gap",
        "0 3 * * *",
        "Pacific/Chatham",
        "2025-09-27T12:00:00+12:45",
        ("2025-09-28T03:45:00+13:45", "2025-09-29T03:00:00+13:45"),
    ),
    Case(
        "chatham_fall_repeat",
        "0 3 * * *",
        "Pacific/Chatham",
        "2025-04-05T12:00:00+13:45",
        ("2025-04-06T03:00:00+13:45", "2025-04-07T03:00:00+12:45"),
    ),
    Case(
        "chatham_gap_real_time",  # 03:00 and 03:30 do not exist on the 28th
        "*/30 3 * * *",
        "Pacific/Chatham",
        "2025-09-28T01:00:00+12:45",
        ("2025-09-29T03:00:00+13:45", "2025-09-29T03:30:00+13:45"),
    ),
    # Pacific/Apia skipped 2011-12-30: 2011-12-29 24:00 -10 is 2011-12-31 00:00 +14.
    Case(
        "apia_skipped_day",
        "0 12 * * *",
        "Pacific/Apia",
        "2011-12-29T13:00:00-10:00",
        ("2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"),
    ),
    Case(
        "apia_skipped_date_fixed_time",
        "0 0 30 12 *",
        "Pacific/Apia",
        "2011-12-29T13:00:00-10:00",
        ("2011-12-31T00:00:00+14:00", "2012-12-30T00:00:00+14:00"),
    ),
    Case(
        "apia_skipped_date_real_time",  # cronsim returns the nonexistent 2011-12-30 00:00
        "*/30 * 30 12 *",
        "Pacific/Apia",
        "2011-12-29T13:00:00-10:00",
        ("2012-12-30T00:00:00+14:00", "2012-12-30T00:30:00+14:00"),
        cronsim_agrees=False,
    ),
    # Asia/Kolkata: +05:30 all year.
    Case(
        "kolkata_daily",
        "0 9 * * *",
        "Asia/Kolkata",
        "2025-03-29T12:00:00+05:30",
        ("2025-03-30T09:00:00+05:30", "2025-03-31T09:00:00+05:30"),
    ),
    Case(
        "kolkata_every_45",
        "*/45 * * * *",
        "Asia/Kolkata",
        "2025-03-29T23:00:00+05:30",
        ("2025-03-29T23:45:00+05:30", "2025-03-30T00:00:00+05:30", "2025-03-30T00:45:00+05:30"),
    ),
]


def local_times(expr: str, zone: str, start: str, count: int) -> list[str]:
    trigger = CronTrigger(expr, zone)
    begin = datetime.fromisoformat(start).timestamp()
    times = []
    for ts in fire_times(trigger, begin):
        times.append(datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat())
        if len(times) == count:
            break
    return times


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fire_times_across_transitions(case: Case) -> None:
    assert local_times(case.expr, case.zone, case.start, len(case.expected)) == list(case.expected)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.cronsim_agrees], ids=[c.id for c in CASES if c.cronsim_agrees]
)
def test_cronsim_agrees(case: Case) -> None:
    zone = ZoneInfo(case.zone)
    it = CronSim(case.expr, datetime.fromisoformat(case.start).astimezone(zone))
    expected = [datetime.fromisoformat(t).timestamp() for t in case.expected]
    assert [next(it).timestamp() for _ in expected] == expected


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if not c.cronsim_agrees],
    ids=[c.id for c in CASES if not c.cronsim_agrees],
)
def test_cronsim_differs_where_documented(case: Case) -> None:
    zone = ZoneInfo(case.zone)
    it = CronSim(case.expr, datetime.fromisoformat(case.start).astimezone(zone))
    expected = [datetime.fromisoformat(t).timestamp() for t in case.expected]
    assert [next(it).timestamp() for _ in expected] != expected


def test_real_time_fires_are_exactly_every_15_minutes_through_both_transitions() -> None:
    trigger = CronTrigger("*/15 * * * *", "Europe/Paris")
    start = datetime.fromisoformat("2025-03-29T00:00:00+01:00").timestamp()
    end = datetime.fromisoformat("2025-10-28T00:00:00+01:00").timestamp()
    times = list(fire_times(trigger, start, end))
    assert {b - a for a, b in itertools.pairwise(times)} == {900.0}


def test_fixed_time_daily_fires_once_a_day_through_a_year_of_transitions() -> None:
    zone = ZoneInfo("America/New_York")
    trigger = CronTrigger("30 1 * * *", zone)
    start = datetime.fromisoformat("2025-01-01T00:00:00-05:00").timestamp()
    end = datetime.fromisoformat("2026-01-01T00:00:00-05:00").timestamp()
    days = [datetime.fromtimestamp(ts, zone).date() for ts in fire_times(trigger, start, end)]
    assert len(days) == len(set(days)) == 365


def test_zone_given_as_zoneinfo_or_name_is_the_same() -> None:
    by_name = CronTrigger("0 9 * * 1", "Europe/Paris")
    by_zone = CronTrigger("0 9 * * 1", ZoneInfo("Europe/Paris"))
    assert by_name.zone is by_zone.zone
    assert by_name.next_after(1_750_000_000) == by_zone.next_after(1_750_000_000)


def test_host_zone_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    before = CronTrigger("0 9 * * *").next_after(1_750_000_000)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert CronTrigger("0 9 * * *").next_after(1_750_000_000) == before
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
