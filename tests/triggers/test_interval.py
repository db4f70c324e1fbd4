"""`every` triggers: elapsed time anchored to a fixed instant, and calendar days at a local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clocktower.model import InvalidSpec
from clocktower.triggers.interval import EveryTrigger

from .timeutil import NEW_YORK, PARIS, take, ts, wall

# --------------------------------------------------------------------------- elapsed


@pytest.mark.parametrize(
    ("expr", "seconds"),
    [
        ("every 90s", 90),
        ("90s", 90),
        ("1h30m", 5400),
        ("every 10 minutes", 600),
        ("  EVERY   10   Minutes ", 600),
        ("every minute", 60),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        ("2 hours and 15 min", 8100),
        ("1h 30m", 5400),
    ],
)
def test_elapsed_forms_mean_real_seconds(expr: str, seconds: int) -> None:
    trigger = EveryTrigger(expr)
    first = trigger.next_after(0)
    assert first == seconds
    assert trigger.next_after(first) == 2 * seconds


def test_elapsed_is_anchored_to_the_epoch_so_restarts_never_drift() -> None:
    trigger = EveryTrigger("every 10 minutes")
    # Asked at any moment, the answer lands on the same grid: :00, :10, :20 UTC.
    assert trigger.next_after(ts("2025-06-01T12:03:17+00:00")) == ts("2025-06-01T12:10:00+00:00")
    assert trigger.next_after(ts("2025-06-01T12:09:59+00:00")) == ts("2025-06-01T12:10:00+00:00")
    assert trigger.next_after(ts("2025-06-01T12:10:00+00:00")) == ts("2025-06-01T12:20:00+00:00")


def test_elapsed_start_sets_the_phase_and_nothing_fires_before_it() -> None:
    start = datetime(2025, 6, 1, 12, 3, tzinfo=UTC)
    trigger = EveryTrigger("every 10 minutes", start=start)
    assert trigger.next_after(ts("2025-01-01T00:00:00+00:00")) == start.timestamp()
    assert trigger.next_after(start.timestamp()) == ts("2025-06-01T12:13:00+00:00")


def test_naive_start_is_local_to_the_trigger_zone() -> None:
    trigger = EveryTrigger("1h", PARIS, start=datetime(2025, 6, 1, 9, 0))
    assert trigger.next_after(0) == ts("2025-06-01T09:00:00+02:00")


@pytest.mark.parametrize(
    ("name", "start", "next_local"),
    [
        ("spring_gap", "2025-03-24T16:00:00+01:00", "2025-03-31T17:00:00+02:00"),
        ("fall_repeat", "2025-10-20T16:00:00+02:00", "2025-10-27T15:00:00+01:00"),
    ],
)
def test_elapsed_7d_is_exactly_168_real_hours_across_dst(
    name: str, start: str, next_local: str
) -> None:
    trigger = EveryTrigger("7d", PARIS, start=datetime.fromisoformat(start))
    first = trigger.next_after(0)
    second = trigger.next_after(first)
    assert first == ts(start)
    assert second - first == 168 * 3600
    assert wall(second, PARIS) == next_local


@given(
    seconds=st.integers(min_value=1, max_value=30 * 86400),
    after=st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
)
def test_elapsed_next_is_the_first_grid_point_strictly_after(seconds: int, after: float) -> None:
    trigger = EveryTrigger(f"{seconds}s")
    fire = trigger.next_after(after)
    assert fire is not None
    assert after < fire <= after + seconds
    assert fire % seconds == 0


# --------------------------------------------------------------------------- calendar


def test_calendar_every_counts_days_from_the_start_date() -> None:
    trigger = EveryTrigger("every 2 days at 09:30", PARIS, start=datetime(2025, 1, 1))
    fires = take(trigger, 0, 3)
    assert [wall(f, PARIS) for f in fires] == [
        "2025-01-01T09:30:00+01:00",
        "2025-01-03T09:30:00+01:00",
        "2025-01-05T09:30:00+01:00",
    ]


def test_calendar_every_skips_the_start_day_when_its_time_has_passed() -> None:
    trigger = EveryTrigger("every 2 days at 09:30", PARIS, start=datetime(2025, 1, 1, 12, 0))
    assert wall(take(trigger, 0, 1)[0], PARIS) == "2025-01-03T09:30:00+01:00"


def test_calendar_every_without_start_counts_from_1970_01_01() -> None:
    trigger = EveryTrigger("every 7 days at 16:00")  # 1970-01-01 was a Thursday
    fire = trigger.next_after(ts("2025-06-02T00:00:00+00:00"))  # a Monday
    assert wall(fire, ZoneInfo("UTC")) == "2025-06-05T16:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "start", "expected"),
    [
        (
            "spring_forward_2025_03_30",
            datetime(2025, 3, 23),
            ["2025-03-23T16:00:00+01:00", "2025-03-30T16:00:00+02:00", "2025-04-06T16:00:00+02:00"],
        ),
        (
            "fall_back_2025_10_26",
            datetime(2025, 10, 19),
            ["2025-10-19T16:00:00+02:00", "2025-10-26T16:00:00+01:00", "2025-11-02T16:00:00+01:00"],
        ),
    ],
)
def test_calendar_every_keeps_the_local_time_across_dst(
    name: str, start: datetime, expected: list[str]
) -> None:
    trigger = EveryTrigger("every 7 days at 16:00", PARIS, start=start)
    fires = take(trigger, 0, 3)
    assert [wall(f, PARIS) for f in fires] == expected
    hours = (fires[1] - fires[0]) / 3600
    assert hours == (167 if name.startswith("spring") else 169)


def test_calendar_time_in_the_spring_gap_fires_at_the_first_instant_after_it() -> None:
    trigger = EveryTrigger("every day at 02:30", PARIS)
    fires = take(trigger, ts("2025-03-29T00:00:00+01:00"), 3)
    assert [wall(f, PARIS) for f in fires] == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]


def test_calendar_time_in_the_fall_fold_fires_once_at_its_first_occurrence() -> None:
    trigger = EveryTrigger("every day at 02:30", PARIS)
    fires = take(trigger, ts("2025-10-25T12:00:00+02:00"), 2)
    assert [wall(f, PARIS) for f in fires] == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:30:00+01:00",
    ]


@given(after=st.floats(min_value=ts("2020-01-01T00:00:00+00:00"), max_value=4e9))
def test_calendar_fire_times_strictly_increase(after: float) -> None:
    trigger = EveryTrigger("every 3 days at 02:30", NEW_YORK)
    first = trigger.next_after(after)
    assert first is not None and first > after
    second = trigger.next_after(first)
    assert second is not None and 2 * 86400 < second - first < 4 * 86400


# --------------------------------------------------------------------------- errors, describe


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("every 10 parsecs", "parsecs"),
        ("every 0s", "zero"),
        ("every 10", "10"),
        ("every 2 hours at 10:00", "whole days"),
        ("every 7 days at 25:00", "25:00"),
    ],
)
def test_bad_expressions_name_the_field_and_the_bad_part(expr: str, names: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        EveryTrigger(expr, job_id="backup")
    assert info.value.field == "every"
    assert info.value.job == "backup"
    assert names in info.value.message


def test_describe_says_elapsed_or_calendar() -> None:
    assert EveryTrigger("90s").describe() == "Every 90 seconds, UTC"
    assert "168 real hours" in EveryTrigger("7d", PARIS).describe()
    calendar = EveryTrigger("7 days at 16:00", PARIS, start=datetime(2025, 3, 23))
    assert calendar.describe() == (
        "Every 7 days at 16:00, starting 2025-03-23 00:00 +01:00, Europe/Paris"
    )


def test_canonical_form() -> None:
    assert EveryTrigger("every 1h 30m").canonical == "90m"
    assert EveryTrigger("every 2 weeks at 9am").canonical == "14 days at 09:00"
    assert EveryTrigger("7 days at 16:00").calendar
    assert not EveryTrigger("7d").calendar
