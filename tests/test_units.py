"""Durations, sizes, zones and dates: what each input accepts and what it says when it refuses."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clocktower.model import InvalidSpec
from clocktower.units import (
    describe,
    format_duration,
    format_size,
    json_value,
    parse_date,
    parse_datetime,
    parse_duration,
    parse_positive_duration,
    parse_size,
    parse_timezone,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("10 minutes", 600),
        ("1 hour 5 secs", 3605),
        ("45", 45),
        ("0", 0),
        (" 15M ", 900),
        (30, 30),
        (2.5, 2.5),
    ],
)
def test_parse_duration_reads_units_and_plain_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text, "timeout") == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10x", "'10x' is not a duration: use a number of seconds or units ms, s, m, h, d, w"),
        ("m10", "'m10' is not a duration"),
        ("", "'' is not a duration"),
        ("1h30", "'1h30' is not a duration"),
        (-5, "must not be negative, got -5"),
        (True, 'expected a duration ("90s", "10m", "1h30m", "2d") or seconds, got boolean true'),
        ([1], "got array"),
        (float("inf"), "is not a finite duration"),
    ],
)
def test_parse_duration_refusals_name_the_field(value: object, message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_duration(value, "retry_delay")
    assert info.value.field == "retry_delay"
    assert message in str(info.value)


def test_positive_duration_refuses_zero() -> None:
    with pytest.raises(InvalidSpec, match="must be more than 0 seconds, got '0s'"):
        parse_positive_duration("0s", "timeout")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (90, "1m30s"), (900, "15m"), (5400, "1h30m"), (86400, "1d"), (0.25, "0.25s")],
)
def test_format_duration_is_short_and_readable(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(
    st.one_of(
        st.integers(min_value=0, max_value=10**12).map(float),
        st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False),
    )
)
def test_format_duration_reads_back_exactly(seconds: float) -> None:
    assert parse_duration(format_duration(seconds), "timeout") == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512MB", 512_000_000),
        ("1GiB", 1 << 30),
        ("64 KiB", 65536),
        ("1.5GiB", 1610612736),
        ("100", 100),
        ("100B", 100),
        ("2mib", 2 << 20),
        (4096, 4096),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value, "memory_limit") == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("512M", "'512M' is not a size: use a number of bytes or units B, kB, MB, GB, TB"),
        ("lots", "'lots' is not a size"),
        ("0.3B", "'0.3B' is not a whole number of bytes"),
        (0, "must be more than 0 bytes"),
        (1.5, 'expected a size ("512MB", "1GiB") or a number of bytes, got float 1.5'),
    ],
)
def test_parse_size_refusals(value: object, message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_size(value, "output_cap")
    assert info.value.field == "output_cap"
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(1 << 20, "1MiB"), (512_000_000, "512MB"), (1000, "1kB"), (1234, "1234B"), (3 << 30, "3GiB")],
)
def test_format_size_prefers_the_shortest_exact_unit(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=1, max_value=1 << 50))
def test_format_size_reads_back_exactly(size: int) -> None:
    assert parse_size(format_size(size), "output_cap") == size


def test_timezone_suggests_the_closest_zone() -> None:
    assert parse_timezone("Europe/Paris", "tz") == "Europe/Paris"
    with pytest.raises(InvalidSpec) as info:
        parse_timezone("Europe/Pari", "tz")
    assert info.value.field == "tz"
    assert str(info.value).startswith("field 'tz': unknown time zone 'Europe/Pari': use an IANA")
    assert "did you mean 'Europe/Paris'" in str(info.value)


def test_timezone_refuses_the_hosts_zone() -> None:
    with pytest.raises(InvalidSpec, match="'localtime' is the host's zone"):
        parse_timezone("localtime", "timezone")


def test_timezone_refuses_paths() -> None:
    with pytest.raises(InvalidSpec, match=r"unknown time zone '\.\./etc/passwd'"):
        parse_timezone("../etc/passwd", "tz")


def test_datetimes_and_dates() -> None:
    paris = timezone(timedelta(hours=2))
    assert parse_datetime("2025-06-01T09:00:00", "start") == datetime(2025, 6, 1, 9)
    assert parse_datetime("2025-06-01T09:00:00+02:00", "start") == datetime(
        2025, 6, 1, 9, tzinfo=paris
    )
    assert parse_datetime(date(2025, 6, 1), "start") == datetime(2025, 6, 1)
    assert parse_date("2025-12-25", "exclude[0]") == date(2025, 12, 25)
    with pytest.raises(InvalidSpec, match="'tomorrow' is not an ISO date-time"):
        parse_datetime("tomorrow", "end")
    with pytest.raises(InvalidSpec, match="expected a date"):
        parse_date(datetime(2025, 12, 25, 1), "exclude[1]")


def test_json_values_name_the_nested_field() -> None:
    assert json_value((1, [2, {"a": None}]), "args") == [1, [2, {"a": None}]]
    with pytest.raises(InvalidSpec) as info:
        json_value({"when": [date(2025, 1, 1)]}, "kwargs")
    assert info.value.field == "kwargs.when[0]"
    assert "expected a JSON value" in info.value.message
    with pytest.raises(InvalidSpec, match="nan cannot be stored as JSON"):
        json_value(float("nan"), "json")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5, "integer 5"),
        (True, "boolean true"),
        ("x", "string 'x'"),
        ([], "array"),
        ({}, "table"),
        (None, "null"),
        (date(2025, 1, 2), "date 2025-01-02"),
        ("y" * 50, "string"),
    ],
)
def test_describe_uses_toml_and_json_words(value: object, text: str) -> None:
    assert describe(value) == text
