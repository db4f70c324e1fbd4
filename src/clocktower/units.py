"""Durations, sizes, time zones and the checks on plain values that every input shares.

The REST API's JSON, the config file's TOML and the CLI's flags all come through
these functions, so they accept the same things and say the same words when
they refuse one. Each function takes the `field` being read, and every error it
raises names it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from clocktower.model import InvalidSpec
from clocktower.triggers.localtime import load_zone

_NUMBER = r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"

_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION_WORDS = {
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
    "week": "w",
    "weeks": "w",
}
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)\s*")
_DURATION_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_EXACT_FLOAT_LIMIT = 2**53

_SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(rf"^\s*({_NUMBER})\s*([a-zA-Z]*)\s*$")
_SIZE_FORMAT_UNITS = (
    ("TiB", 1024**4),
    ("GiB", 1024**3),
    ("MiB", 1024**2),
    ("KiB", 1024),
    ("TB", 1000**4),
    ("GB", 1000**3),
    ("MB", 1000**2),
    ("kB", 1000),
)

# --------------------------------------------------------------------------- describing values


def describe(value: object) -> str:
    """A value as a user of TOML or JSON would name it: "integer 5", "table"."""
    if value is None:
        return "null"
    name = _type_name(value)
    if isinstance(value, bool | int | float | str | date | time):
        text = repr(value) if isinstance(value, str) else _scalar_text(value)
        if len(text) <= 40:
            return f"{name} {text}"
    return name


def _type_name(value: object) -> str:
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (datetime, "datetime"),
        (date, "date"),
        (time, "time"),
        (Mapping, "table"),
        ((list, tuple), "array"),
    )
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def wrong_type(expected: str, value: object, field: str) -> InvalidSpec:
    return InvalidSpec(f"expected {expected}, got {describe(value)}", field=field)


def suggest(word: str, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" when a choice is close to `word`, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def one_of(value: object, allowed: Iterable[str], field: str) -> str:
    """A string that must be one of `allowed` (matched case-insensitively)."""
    choices = list(allowed)
    listed = ", ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        raise wrong_type(f"one of {listed}", value, field)
    if value.lower() not in choices:
        hint = suggest(value.lower(), choices)
        raise InvalidSpec(f"{value!r} is not one of {listed}{hint}", field=field)
    return value.lower()


# --------------------------------------------------------------------------- plain values


def expect_str(value: object, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise wrong_type("a string", value, field)
    if not allow_empty and not value.strip():
        raise InvalidSpec("must not be empty", field=field)
    return value


def expect_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise wrong_type("true or false", value, field)
    return value


def expect_int(value: object, field: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type("an integer", value, field)
    if minimum is not None and value < minimum:
        raise InvalidSpec(f"must be at least {minimum}, got {value}", field=field)
    return value


def expect_list(value: object, field: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise wrong_type("an array", value, field)
    return list(value)


def expect_table(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise wrong_type("a table", value, field)
    for key in value:
        if not isinstance(key, str):
            raise InvalidSpec(f"keys must be strings, got {describe(key)}", field=field)
    return value


def expect_str_table(value: object, field: str) -> dict[str, str]:
    """A table whose values are all strings (env, headers)."""
    table = expect_table(value, field)
    for key, item in table.items():
        if not isinstance(item, str):
            hint = "; quote it" if isinstance(item, int | float) else ""
            raise InvalidSpec(
                f"expected a string, got {describe(item)}{hint}", field=f"{field}.{key}"
            )
    return dict(table)


def json_value(value: object, field: str) -> Any:
    """A value that can be stored as JSON: returns it with tuples as lists."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidSpec(f"{value} cannot be stored as JSON", field=field)
        return value
    if isinstance(value, list | tuple):
        return [json_value(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        table = expect_table(value, field)
        return {key: json_value(item, f"{field}.{key}") for key, item in table.items()}
    raise wrong_type("a JSON value (string, number, boolean, array or table)", value, field)


# --------------------------------------------------------------------------- durations


def parse_duration(value: object, field: str) -> float:
    """Seconds from "90s", "10m", "1h30m", "2d", "1.5h", "250ms" or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise wrong_type('a duration ("90s", "10m", "1h30m", "2d") or seconds', value, field)
    seconds = _duration_seconds(value, field)
    if not math.isfinite(seconds):
        raise InvalidSpec(f"{value!r} is not a finite duration", field=field)
    if seconds < 0:
        raise InvalidSpec(f"must not be negative, got {value!r}", field=field)
    return seconds


def parse_positive_duration(value: object, field: str) -> float:
    """A duration that must be more than zero (a timeout, a lease)."""
    seconds = parse_duration(value, field)
    if seconds <= 0:
        raise InvalidSpec(f"must be more than 0 seconds, got {value!r}", field=field)
    return seconds


def _duration_seconds(value: int | float | str, field: str) -> float:
    if not isinstance(value, str):
        return float(value)
    text = value.strip().lower()
    if re.fullmatch(_NUMBER, text):
        return float(text)
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        raise _bad_duration(value, field)
    total = 0.0
    for part in parts:
        unit = _DURATION_WORDS.get(part.group(2), part.group(2))
        if unit not in _DURATION_UNITS:
            raise _bad_duration(value, field)
        total += float(part.group(1)) * _DURATION_UNITS[unit]
    return total


def _bad_duration(value: str, field: str) -> InvalidSpec:
    return InvalidSpec(
        f"{value!r} is not a duration: use a number of seconds or units "
        'ms, s, m, h, d, w ("90s", "10m", "1h30m", "2d")',
        field=field,
    )


def format_duration(seconds: float) -> str:
    """The shortest text `parse_duration` reads back to exactly `seconds`: 5400 -> "1h30m"."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"not a duration: {seconds!r}")
    if seconds != int(seconds) or seconds >= _EXACT_FLOAT_LIMIT:
        return f"{seconds!r}s"
    rest = int(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in _DURATION_FORMAT_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# --------------------------------------------------------------------------- sizes


def parse_size(value: object, field: str) -> int:
    """Bytes from "512MB", "1GiB", "64KiB" or a number of bytes."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise wrong_type('a size ("512MB", "1GiB") or a number of bytes', value, field)
    size = value if isinstance(value, int) else _size_bytes(value, field)
    if size <= 0:
        raise InvalidSpec(f"must be more than 0 bytes, got {value!r}", field=field)
    return size


def _size_bytes(text: str, field: str) -> int:
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or (unit and unit not in _SIZE_UNITS):
        raise InvalidSpec(
            f"{text!r} is not a size: use a number of bytes or units "
            "B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)",
            field=field,
        )
    try:
        amount = Decimal(match.group(1)) * _SIZE_UNITS[unit or "b"]
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise InvalidSpec(f"{text!r} is not a size", field=field) from None
    if amount != amount.to_integral_value():
        raise InvalidSpec(f"{text!r} is not a whole number of bytes", field=field)
    return int(amount)


def format_size(size: int) -> str:
    """The text `parse_size` reads back to exactly `size`: 536870912 -> "512MiB"."""
    exact = [(size // factor, unit) for unit, factor in _SIZE_FORMAT_UNITS if size % factor == 0]
    if not exact or size <= 0:
        return f"{size}B"
    count, unit = min(exact, key=lambda candidate: candidate[0])
    return f"{count}{unit}"


# --------------------------------------------------------------------------- time zones


def parse_timezone(value: object, field: str) -> str:
    """An IANA zone name ("Europe/Paris", "UTC"), checked as triggers check it."""
    name = expect_str(value, field).strip()
    try:
        load_zone(name)
    except InvalidSpec as exc:
        raise InvalidSpec(exc.message, field=field) from None
    return name


def parse_datetime(value: object, field: str) -> datetime:
    """An ISO-8601 date-time (a TOML date-time or a string); a bare date means midnight."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise wrong_type('an ISO date-time ("2025-06-01T09:00:00")', value, field)
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidSpec(
            f"{value!r} is not an ISO date-time (like 2025-06-01T09:00:00 or "
            "2025-06-01T09:00:00+02:00)",
            field=field,
        ) from None


def parse_date(value: object, field: str) -> date:
    """An ISO calendar date ("2025-12-25"), from TOML or a string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise wrong_type('a date ("2025-12-25")', value, field)
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidSpec(f"{value!r} is not a date (like 2025-12-25)", field=field) from None
