"""`at` triggers: one instant, with an offset or local to the trigger's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from clocktower.model import InvalidSpec
from clocktower.triggers.oneoff import AtTrigger

from .timeutil import NEW_YORK, PARIS, ts, wall


@pytest.mark.parametrize(
    "expr",
    [
        "2026-12-01T09:00:00+01:00",
        "2026-12-01T08:00:00Z",
        "2026-12-01T08:00:00z",
        "2026-12-01 08:00 UTC",
        "2026-12-01T03:00:00-05:00",
    ],
)
def test_an_instant_with_an_offset_is_that_instant_in_any_zone(expr: str) -> None:
    for zone in ("UTC", "Europe/Paris", "Asia/Tokyo"):
        assert AtTrigger(expr, zone).instant == ts("2026-12-01T08:00:00+00:00")


@pytest.mark.parametrize(
    ("expr", "zone", "utc"),
    [
        ("2026-12-01 09:00", PARIS, "2026-12-01T08:00:00+00:00"),
        ("2026-12-01T09:00", PARIS, "2026-12-01T08:00:00+00:00"),
        ("2026-12-01 09:00", NEW_YORK, "2026-12-01T14:00:00+00:00"),
        ("2026-12-01 at 9am", NEW_YORK, "2026-12-01T14:00:00+00:00"),
        ("once at 2026-12-01 09:00", PARIS, "2026-12-01T08:00:00+00:00"),
        ("2026-07-01 09:00", PARIS, "2026-07-01T07:00:00+00:00"),
    ],
)
def test_a_naive_instant_is_local_to_the_trigger_zone(expr: str, zone: ZoneInfo, utc: str) -> None:
    assert AtTrigger(expr, zone).instant == ts(utc)


def test_a_local_time_in_the_spring_gap_means_the_first_instant_after_it() -> None:
    trigger = AtTrigger("2025-03-30 02:30", PARIS)
    assert wall(trigger.instant, PARIS) == "2025-03-30T03:00:00+02:00"


def test_a_local_time_in_the_fall_fold_means_its_first_occurrence() -> None:
    trigger = AtTrigger("2025-10-26 02:30", PARIS)
    assert wall(trigger.instant, PARIS) == "2025-10-26T02:30:00+02:00"


def test_it_fires_once_strictly_after_the_asked_instant() -> None:
    trigger = AtTrigger("2026-12-01T08:00:00Z")
    instant = ts("2026-12-01T08:00:00+00:00")
    assert trigger.next_after(instant - 0.001) == instant
    assert trigger.next_after(0) == instant
    assert trigger.next_after(instant) is None
    assert trigger.next_after(instant + 3600) is None
    assert trigger.skip_reason(instant) is None


def test_a_datetime_is_accepted_as_is() -> None:
    when = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert AtTrigger(when, PARIS).instant == when.timestamp()
    assert AtTrigger(datetime(2026, 12, 1, 9, 0), PARIS).instant == when.timestamp()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("2026-12-01", "no time of day"),
        ("tomorrow at noon", "not an instant"),
        ("2026-02-30 10:00", "2026-02-30"),
        ("2026-12-01 25:00", "25:00"),
    ],
)
def test_bad_instants_name_the_field_and_the_bad_part(expr: str, names: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        AtTrigger(expr, job_id="campaign-42")
    assert info.value.field == "at"
    assert info.value.job == "campaign-42"
    assert names in info.value.message


def test_describe_shows_local_time_with_offset_and_zone() -> None:
    trigger = AtTrigger("2026-12-01T08:00:00Z", PARIS)
    assert trigger.describe() == "Once at 2026-12-01 09:00 +01:00, Europe/Paris"
