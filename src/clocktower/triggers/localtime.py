"""Wall-clock time in a zone: loading zones and turning local times into instants.

The rules are the ones fixed-time cron uses (see docs/schedules.md): a local
time that falls in a spring-forward gap means the first instant after the gap;
a local time that occurs twice in a fall-back means its first occurrence.
"""

from __future__ import annotations

import difflib
import math
import zoneinfo
from datetime import date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo

from clocktower.model import InvalidSpec

_HOST_ZONES = frozenset({"localtime", "posixrules"})  # files some systems keep beside the zones


def load_zone(name: str | ZoneInfo, *, job_id: str = "") -> ZoneInfo:
    """The IANA zone called `name`, or InvalidSpec (field "tz") with close names."""
    if isinstance(name, ZoneInfo):
        return name
    key = name.strip()
    if key.lower() in _HOST_ZONES:
        raise InvalidSpec(
            f"{key!r} is the host's zone, which Clocktower never uses: "
            "name an IANA zone such as 'Europe/Paris' or 'UTC'",
            field="tz",
            job=job_id or None,
        )
    try:
        if key:
            return ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    raise InvalidSpec(_unknown_zone_message(key), field="tz", job=job_id or None)


def _unknown_zone_message(key: str) -> str:
    message = f"unknown time zone {key!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
    close = suggest_zones(key)
    if close:
        message += "; did you mean " + " or ".join(repr(z) for z in close) + "?"
    return message


def suggest_zones(key: str, limit: int = 3) -> list[str]:
    """Zone names close to `key` (case-insensitive, or similar spelling)."""
    if not key:
        return []
    names = [n for n in _zone_names() if n.lower() not in _HOST_ZONES]
    exact = [n for n in names if n.lower() == key.lower()]
    if exact:
        return exact
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=limit, cutoff=0.6)
    if close:
        return [by_lower[c] for c in close]
    by_city = {n.rsplit("/", 1)[-1].lower(): n for n in names}  # "paris" -> Europe/Paris
    close = difflib.get_close_matches(key.lower(), list(by_city), n=limit, cutoff=0.75)
    return [by_city[c] for c in close]


@cache
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def local(ts: float, zone: ZoneInfo) -> datetime:
    """The instant `ts` (epoch seconds) as an aware datetime in `zone`."""
    return datetime.fromtimestamp(ts, zone)


def local_date(ts: float, zone: ZoneInfo) -> date:
    """The calendar date in `zone` at the instant `ts`."""
    return local(ts, zone).date()


def resolve_local(naive: datetime, zone: ZoneInfo) -> float:
    """The instant of the wall time `naive` in `zone`.

    In a spring-forward gap: the first instant after the gap. In a fall-back
    fold: the first occurrence.
    """
    first = naive.replace(tzinfo=zone, fold=0).timestamp()
    if local(first, zone).replace(tzinfo=None) == naive:
        return first
    return _gap_end(naive, zone)


def resolve_local_date(day: date, at: time, zone: ZoneInfo) -> float:
    """`resolve_local` for a date and a time of day."""
    return resolve_local(datetime.combine(day, at), zone)


def _gap_end(naive: datetime, zone: ZoneInfo) -> float:
    """The transition instant that ends the gap `naive` falls in."""
    # With fold=1 the wall time is read with the offset after the transition,
    # giving an instant before it; fold=0 gives one after it.
    before = naive.replace(tzinfo=zone, fold=1).timestamp()
    after = naive.replace(tzinfo=zone, fold=0).timestamp()
    lo, hi = math.floor(min(before, after)), math.ceil(max(before, after))
    new_offset = local(hi, zone).utcoffset()
    while hi - lo > 1:  # offsets change on whole seconds
        mid = (lo + hi) // 2
        if local(mid, zone).utcoffset() == new_offset:
            hi = mid
        else:
            lo = mid
    return float(hi)


def to_instant(value: datetime | float, zone: ZoneInfo) -> float:
    """Epoch seconds of `value`; a naive datetime is a wall time in `zone`."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return resolve_local(value, zone)
        return value.timestamp()
    return float(value)


def format_local(ts: float, zone: ZoneInfo) -> str:
    """The instant as local wall time with its offset: "2025-03-30 03:00 +02:00"."""
    dt = local(ts, zone)
    clock = "%H:%M" if dt.second == 0 and dt.microsecond == 0 else "%H:%M:%S"
    return dt.strftime(f"%Y-%m-%d {clock} ") + format_offset(dt)


def format_offset(dt: datetime) -> str:
    """The UTC offset of an aware datetime as +HH:MM."""
    offset = dt.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"
