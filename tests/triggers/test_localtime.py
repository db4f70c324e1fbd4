"""Wall times to instants: a gap means the first instant after it, a fold its first occurrence."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clocktower.model import InvalidSpec
from clocktower.triggers.localtime import load_zone, local, resolve_local

ZONES = [
    ZoneInfo(name)
    for name in ("Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia")
]
walls = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1))


@given(wall=walls, zone=st.sampled_from(ZONES))
def test_an_existing_wall_time_resolves_to_its_first_occurrence(
    wall: datetime, zone: ZoneInfo
) -> None:
    instant = resolve_local(wall, zone)
    if local(instant, zone).replace(tzinfo=None) == wall:
        for fold_width in (1800, 3600):  # Lord Howe folds by 30 minutes, the others by an hour
            assert local(instant - fold_width, zone).replace(tzinfo=None) != wall


@given(wall=walls, zone=st.sampled_from(ZONES))
def test_a_missing_wall_time_resolves_to_the_end_of_its_gap(wall: datetime, zone: ZoneInfo) -> None:
    instant = resolve_local(wall, zone)
    found = local(instant, zone).replace(tzinfo=None)
    if found != wall:  # wall is in a gap
        assert found > wall
        assert local(instant - 1, zone).replace(tzinfo=None) < wall


@pytest.mark.parametrize(
    ("name", "zone", "wall", "expected"),
    [
        ("paris_spring_gap", "Europe/Paris", datetime(2025, 3, 30, 2, 30),
         "2025-03-30T03:00:00+02:00"),
        ("paris_fall_fold", "Europe/Paris", datetime(2025, 10, 26, 2, 30),
         "2025-10-26T02:30:00+02:00"),
        ("lord_howe_half_hour_gap", "Australia/Lord_Howe", datetime(2025, 10, 5, 2, 15),
         "2025-10-05T02:30:00+11:00"),
        ("samoa_skipped_day", "Pacific/Apia", datetime(2011, 12, 30, 12, 0),
         "2011-12-31T00:00:00+14:00"),
    ],
)  # fmt: skip
def test_named_transitions(name: str, zone: str, wall: datetime, expected: str) -> None:
    tz = ZoneInfo(zone)
    assert local(resolve_local(wall, tz), tz).isoformat() == expected


def test_zone_names_are_checked_with_suggestions() -> None:
    assert load_zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    with pytest.raises(InvalidSpec, match="did you mean 'America/New_York'") as info:
        load_zone("America/NewYork", job_id="report")
    assert info.value.field == "tz"
    assert info.value.job == "report"


def test_an_empty_zone_is_refused() -> None:
    with pytest.raises(InvalidSpec):
        load_zone("  ")
