"""Bounds and exclusions: nothing exists outside [start, end]; excluded dates are skipped."""

from __future__ import annotations

from datetime import date

import pytest

from clocktower.triggers.bounded import BoundedTrigger
from clocktower.triggers.interval import EveryTrigger
from clocktower.triggers.oneoff import AtTrigger

from .timeutil import PARIS, take, ts, wall

DAILY_9 = "every day at 09:00"


def test_no_fire_time_exists_before_start() -> None:
    start = ts("2025-12-20T12:00:00+01:00")
    trigger = BoundedTrigger(EveryTrigger(DAILY_9, PARIS), start=start)
    assert [wall(f, PARIS) for f in take(trigger, 0, 1)] == ["2025-12-21T09:00:00+01:00"]


def test_a_fire_time_equal_to_start_exists() -> None:
    start = ts("2025-12-20T09:00:00+01:00")
    trigger = BoundedTrigger(EveryTrigger(DAILY_9, PARIS), start=start)
    assert trigger.next_after(0) == start


def test_end_is_inclusive_and_nothing_follows_it() -> None:
    end = ts("2025-12-22T09:00:00+01:00")
    trigger = BoundedTrigger(EveryTrigger(DAILY_9, PARIS), end=end)
    fires = take(trigger, ts("2025-12-20T10:00:00+01:00"), 10)
    assert [wall(f, PARIS) for f in fires] == [
        "2025-12-21T09:00:00+01:00",
        "2025-12-22T09:00:00+01:00",
    ]
    assert trigger.next_after(end) is None


def test_excluded_dates_are_still_fire_times_but_say_why_to_skip() -> None:
    trigger = BoundedTrigger(EveryTrigger(DAILY_9, PARIS), exclude=(date(2025, 12, 25),))
    fires = take(trigger, ts("2025-12-24T00:00:00+01:00"), 3)
    assert [wall(f, PARIS)[:10] for f in fires] == ["2025-12-24", "2025-12-25", "2025-12-26"]
    assert [trigger.skip_reason(f) for f in fires] == [None, "excluded date 2025-12-25", None]


@pytest.mark.parametrize(
    ("zone", "skipped"),
    [("Europe/Paris", "excluded date 2025-12-25"), ("UTC", None)],
)
def test_excluded_dates_are_dates_in_the_trigger_zone(zone: str, skipped: str | None) -> None:
    # 23:30 UTC on the 24th is already the 25th in Paris.
    trigger = BoundedTrigger(AtTrigger("2025-12-24T23:30:00Z", zone), exclude=(date(2025, 12, 25),))
    assert trigger.skip_reason(ts("2025-12-24T23:30:00+00:00")) == skipped


def test_a_one_off_outside_the_bounds_never_fires() -> None:
    at = AtTrigger("2026-01-10T09:00:00Z")
    assert BoundedTrigger(at, end=ts("2026-01-01T00:00:00+00:00")).next_after(0) is None
    assert BoundedTrigger(at, start=ts("2026-02-01T00:00:00+00:00")).next_after(0) is None


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="end is before start"):
        BoundedTrigger(EveryTrigger("1h"), start=100.0, end=50.0)


def test_describe_mentions_bounds_and_exclusions() -> None:
    trigger = BoundedTrigger(
        EveryTrigger(DAILY_9, PARIS),
        start=ts("2025-12-01T00:00:00+01:00"),
        end=ts("2026-01-31T00:00:00+01:00"),
        exclude=(date(2026, 1, 1), date(2025, 12, 25)),
    )
    assert trigger.describe() == (
        "Every day at 09:00, Europe/Paris; from 2025-12-01 00:00 +01:00; "
        "until 2026-01-31 00:00 +01:00; except on 2025-12-25, 2026-01-01"
    )
    assert trigger.zone == PARIS
