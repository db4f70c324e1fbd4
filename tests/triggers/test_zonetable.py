"""Zone offsets as integer transitions must be exactly zoneinfo's."""

from __future__ import annotations

import io
import os
import random
import zoneinfo
from datetime import datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import pytest

from clocktower.triggers.tzif import read_rules
from clocktower.triggers.zonetable import (
    ZoneTable,
    probe_offset,
    rules_year,
    scan_year,
    year_start,
    zone_table,
)

DST_ZONES = [
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Asia/Kolkata",
    "Africa/Casablanca",
    "America/Sao_Paulo",
]


def wall_instant(zone: ZoneInfo, wall: int) -> int:
    """The reference answer: first occurrence of a wall time, or the end of its gap."""
    naive = datetime(1970, 1, 1) + timedelta(seconds=wall)
    occurrences = []
    for fold in (0, 1):
        instant = int(naive.replace(tzinfo=zone, fold=fold).timestamp())
        if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) == naive:
            occurrences.append(instant)
    if occurrences:
        return min(occurrences)
    instant = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    while datetime.fromtimestamp(instant, zone).replace(tzinfo=None) < naive:
        instant += 1
    return instant


def test_every_zone_reads_and_agrees_with_zoneinfo() -> None:
    unreadable = [
        key for key in sorted(zoneinfo.available_timezones()) if read_rules(ZoneInfo(key)) is None
    ]
    assert unreadable == []


@pytest.mark.parametrize("seed", range(4))
def test_years_from_the_file_equal_probing_the_zone(seed: int) -> None:
    rng = random.Random(seed)
    keys = rng.sample(sorted(zoneinfo.available_timezones()), 40)
    for key in keys:
        zone = ZoneInfo(key)
        rules = read_rules(zone)
        assert rules is not None
        for year in [*rng.sample(range(1880, 2120), 4), 2011, 2025, 2037, 2038]:
            assert rules_year(rules, year) == scan_year(zone, year), (key, year)


@pytest.mark.parametrize("key", DST_ZONES)
def test_offsets_and_wall_times_match_zoneinfo_near_transitions(key: str) -> None:
    zone = ZoneInfo(key)
    table = zone_table(zone)
    rng = random.Random(key)
    for year in (2011, 2019, 2025, 2030):
        for change in table.year(year_start(year)).transitions:
            for _ in range(30):
                instant = change + rng.randint(-5400, 5400)
                offset, until = table.offset_at(instant)
                assert offset == probe_offset(zone, instant)
                assert probe_offset(zone, until - 1) == offset
                wall = instant + offset + rng.randint(-3600, 3600)
                assert table.resolve(wall) == wall_instant(zone, wall)


def test_a_zone_without_a_file_is_probed() -> None:
    with open(_tzif_path("Europe/Paris"), "rb") as f:
        data = f.read()
    zone = ZoneInfo.from_file(io.BytesIO(data))
    assert zone.key is None
    table = ZoneTable(zone)
    paris = zone_table(ZoneInfo("Europe/Paris"))
    for year in (1995, 2025, 2060):
        assert table.year(year_start(year)) == paris.year(year_start(year))


def test_fixed_offset_zones_have_no_transitions() -> None:
    table = zone_table(ZoneInfo("Etc/GMT+5"))
    assert table.fixed == -5 * 3600
    assert table.offset_at(0)[0] == -5 * 3600
    assert table.resolve(12 * 3600) == 17 * 3600


def _tzif_path(key: str) -> str:
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, key)
        if os.path.isfile(path):
            return path
    return str(resources.files("tzdata.zoneinfo").joinpath(key))
