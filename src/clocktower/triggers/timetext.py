"""Reading and writing durations ("1h30m", "10 minutes") and times of day ("3pm").

Parsers raise `ValueError` with a message meant for a person; the triggers turn
it into `InvalidSpec` naming the field.
"""

from __future__ import annotations

import re
from datetime import time

UNIT_SECONDS: dict[str, int] = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip

_BARE_UNITS = frozenset({"second", "minute", "hour", "day", "week"})
_PART = re.compile(r"(\d+)\s*([a-z]+)")
_LONG_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_SHORT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> int:
    """Seconds in a duration: "90s", "1h30m", "10 minutes", "2 hours and 15 min", "hour"."""
    s = " ".join(text.strip().lower().split())
    if s in _BARE_UNITS:
        return UNIT_SECONDS[s]
    cleaned = re.sub(r",|\band\b", " ", s)
    rest = _PART.sub("", cleaned).strip()
    parts = _PART.findall(cleaned)
    if not parts or rest:
        raise ValueError(
            f"{text.strip()!r} is not a duration: write a number and a unit, "
            "such as '90s', '10 minutes', '1h30m' or '7d'"
        )
    total = 0
    for number, unit in parts:
        if unit not in UNIT_SECONDS:
            raise ValueError(
                f"unknown unit {unit!r} in {text.strip()!r}: use s, m, h, d or w "
                "(or seconds, minutes, hours, days, weeks)"
            )
        total += int(number) * UNIT_SECONDS[unit]
    if total <= 0:
        raise ValueError(f"{text.strip()!r} is zero: an interval must be at least 1 second")
    return total


def format_duration(seconds: int) -> str:
    """A duration in words, in the largest unit that divides it: 5400 -> "90 minutes"."""
    count, name = _largest_unit(seconds, _LONG_UNITS)
    return f"{count} {name}" + ("s" if count != 1 else "")


def format_duration_short(seconds: int) -> str:
    """A duration in compact form: 5400 -> "90m", 604800 -> "7d", 90 -> "90s"."""
    count, name = _largest_unit(seconds, _SHORT_UNITS)
    return f"{count}{name}"


def _largest_unit(seconds: int, units: tuple[tuple[str, int], ...]) -> tuple[int, str]:
    for name, size in units:
        if seconds % size == 0:
            return seconds // size, name
    raise ValueError(f"not a whole number of seconds: {seconds}")  # units end with 1 s


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_MERIDIEM = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s*m\.?")
_NAMED_TIMES = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}


def parse_clock(text: str) -> time:
    """A time of day: "03:00", "9:30", "3pm", "3:30 pm", "noon", "midnight"."""
    s = text.strip().lower()
    if s in _NAMED_TIMES:
        return _NAMED_TIMES[s]
    if m := _CLOCK.fullmatch(s):
        return _checked(int(m[1]), int(m[2]), text)
    if m := _MERIDIEM.fullmatch(s):
        hour = int(m[1])
        if not 1 <= hour <= 12:
            raise ValueError(f"{text.strip()!r} is not a time of day: with am/pm the hour is 1-12")
        hour = hour % 12 + (12 if m[3] == "p" else 0)
        return _checked(hour, int(m[2] or 0), text)
    raise ValueError(
        f"{text.strip()!r} is not a time of day: use HH:MM (24-hour, such as 03:00 or 18:30), "
        "3pm, 9:30am, noon or midnight"
    )


def _checked(hour: int, minute: int, text: str) -> time:
    if hour > 23 or minute > 59:
        raise ValueError(f"{text.strip()!r} is not a time of day: hours are 0-23, minutes 0-59")
    return time(hour, minute)


def format_clock(at: time) -> str:
    """A time of day as HH:MM."""
    return f"{at.hour:02d}:{at.minute:02d}"
