"""A zone's UTC offsets read from its TZif file, evaluated exactly as zoneinfo does.

zoneinfo answers one instant at a time and hides its transitions; schedule
arithmetic wants the transitions themselves. This module reads the same file
zoneinfo reads (TZPATH first, then the tzdata package) and reproduces
zoneinfo's reading of it: the explicit transitions, the first standard-time
type before them, and the POSIX TZ rule in the footer after them (evaluated
per UTC year, as zoneinfo's `fromutc` does). `zonetable` checks the result
against the zone itself before trusting it and probes the zone otherwise.
"""

from __future__ import annotations

import os
import re
import struct
import zoneinfo
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import IO
from zoneinfo import ZoneInfo

DAY = 86400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAYS_BEFORE_MONTH = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_NAME = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]+>)"
_CLOCK = r"[+-]?\d{1,3}(?::\d{1,2}(?::\d{1,2})?)?"
_TZ_STRING = re.compile(
    rf"{_NAME}(?P<std>{_CLOCK})(?:{_NAME}(?P<dst>{_CLOCK})?,(?P<start>[^,]+),(?P<end>[^,]+))?",
    re.ASCII,
)
_WHEN = re.compile(rf"(?:M(\d{{1,2}})\.(\d)\.(\d)|J(\d{{1,3}})|(\d{{1,3}}))(?:/({_CLOCK}))?")


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _seconds(text: str) -> int:
    """[+-]hh[:mm[:ss]] as seconds."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    parts += [0] * (3 - len(parts))
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


@dataclass(frozen=True, slots=True)
class When:
    """A POSIX rule date and time: Mm.w.d, Jn or n, with a local time of day."""

    month: int  # 0 for Jn and n
    week: int
    weekday: int
    day: int  # for Jn and n
    julian: bool
    time: int  # seconds after local midnight (may be negative or past 24h)

    @classmethod
    def parse(cls, text: str) -> When:
        m = _WHEN.fullmatch(text)
        if m is None:
            raise ValueError(f"bad TZ rule date {text!r}")
        clock = _seconds(m[6]) if m[6] else 7200
        if m[1]:
            return cls(int(m[1]), int(m[2]), int(m[3]), 0, False, clock)
        return cls(0, 0, 0, int(m[4] or m[5]), bool(m[4]), clock)

    def wall(self, year: int) -> int:
        """The rule's wall time in `year`, as seconds since 1970 on the local clock.

        Day arithmetic follows zoneinfo's (including its Jn leap-day rule).
        """
        before_year = date(year, 1, 1).toordinal() - EPOCH_ORDINAL - 1
        if not self.month:
            day = self.day + (1 if self.julian and self.day >= 59 and _leap(year) else 0)
            return (before_year + day) * DAY + self.time
        length = 29 if self.month == 2 and _leap(year) else _DAYS_IN_MONTH[self.month]
        first = date(year, self.month, 1).toordinal() % 7  # 0 = Sunday
        mday = (self.weekday - first) % 7 + 1 + (self.week - 1) * 7
        if mday > length:
            mday -= 7
        leap_shift = 1 if self.month > 2 and _leap(year) else 0
        return (before_year + _DAYS_BEFORE_MONTH[self.month] + leap_shift + mday) * DAY + self.time


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class Rule:
    """The footer's daylight-saving rule: offsets east of UTC and when each starts."""

    std: int
    dst: int
    start: When
    end: When

    def bounds(self, year: int) -> tuple[int, int]:
        """The instants DST starts and ends by the rule of UTC year `year`."""
        return self.start.wall(year) - self.std, self.end.wall(year) - self.dst

    def offset_at(self, instant: int, year: int) -> int:
        start, end = self.bounds(year)
        inside = start <= instant < end if start < end else not end <= instant < start
        return self.dst if inside else self.std


@dataclass(frozen=True, slots=True)
class ZoneRules:
    """Everything zoneinfo knows about a zone's offsets."""

    transitions: tuple[int, ...]
    offsets: tuple[int, ...]  # offsets[i] holds from transitions[i]
    before: int  # before the first transition
    after: int  # after the last one, when there is no rule
    rule: Rule | None

    def offset_at(self, instant: int, year: int) -> int:
        """The offset at `instant`, whose UTC year is `year`."""
        trans = self.transitions
        if trans and instant < trans[0]:
            return self.before
        if not trans or instant > trans[-1]:
            return self.after if self.rule is None else self.rule.offset_at(instant, year)
        return self.offsets[bisect_right(trans, instant) - 1]

    def changes(self, start: int, end: int, year: int) -> list[int]:
        """Every instant in (start, end) where the offset may change (UTC year `year`)."""
        trans = self.transitions
        i, j = bisect_right(trans, start), bisect_right(trans, end - 1)
        points = list(trans[i:j])
        if trans and start < trans[-1] + 1 < end:
            points.append(trans[-1] + 1)
        if self.rule is not None:
            last = trans[-1] if trans else start
            points.extend(p for p in self.rule.bounds(year) if start < p < end and p > last)
        return sorted(points)


def read_rules(zone: ZoneInfo) -> ZoneRules | None:
    """The rules in the file zoneinfo loaded `zone` from, or None if it cannot be read."""
    try:
        with _open(zone.key) as f:
            return parse_tzif(f)
    except (OSError, ValueError, struct.error, ImportError, TypeError):
        return None


def _open(key: str | None) -> IO[bytes]:
    """The TZif file of `key`, searched like zoneinfo: TZPATH, then tzdata."""
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ValueError(f"no file for zone {key!r}")
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, key)
        if os.path.isfile(path):
            return open(path, "rb")
    *package, name = key.split("/")
    return resources.files(".".join(["tzdata.zoneinfo", *package])).joinpath(name).open("rb")


def parse_tzif(f: IO[bytes]) -> ZoneRules:
    """Read a TZif file (RFC 8536), version 1 to 4."""
    version, counts = _header(f)
    if version >= 2:
        f.seek(_v1_size(counts), os.SEEK_CUR)
        version, counts = _header(f)
    isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt = counts
    size, code = (8, "q") if version >= 2 else (4, "l")
    transitions = struct.unpack(f">{timecnt}{code}", f.read(timecnt * size))
    indexes = struct.unpack(f">{timecnt}B", f.read(timecnt))
    types = [struct.unpack(">lbB", f.read(6)) for _ in range(typecnt)]
    f.seek(charcnt + leapcnt * (size + 4) + isstdcnt + isutcnt, os.SEEK_CUR)
    footer = f.read().split(b"\n")[1].decode("ascii") if version >= 2 else ""
    return _rules(transitions, [types[i][0] for i in indexes], types, footer)


def _header(f: IO[bytes]) -> tuple[int, tuple[int, ...]]:
    head = f.read(44)
    if head[:4] != b"TZif":
        raise ValueError("not a TZif file")
    version = 1 if head[4:5] == b"\0" else int(head[4:5])
    return version, struct.unpack(">6l", head[20:44])


def _v1_size(counts: tuple[int, ...]) -> int:
    isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt = counts
    return timecnt * 5 + typecnt * 6 + charcnt + leapcnt * 8 + isstdcnt + isutcnt


def _rules(
    transitions: tuple[int, ...],
    offsets: list[int],
    types: list[tuple[int, int, int]],
    footer: str,
) -> ZoneRules:
    if not types:
        raise ValueError("no local time types")
    standard = [utoff for utoff, isdst, _ in types if not isdst]
    before = standard[0] if standard else (offsets[0] if offsets else types[0][0])
    after = offsets[-1] if offsets else types[-1][0]
    rule = None
    if footer:
        after, rule = _footer(footer)
    return ZoneRules(tuple(transitions), tuple(offsets), before, after, rule)


def _footer(text: str) -> tuple[int, Rule | None]:
    """The POSIX TZ string: the standard offset, and the DST rule if any."""
    m = _TZ_STRING.fullmatch(text)
    if m is None:
        raise ValueError(f"unsupported TZ string {text!r}")
    std = -_seconds(m["std"])  # POSIX counts west of UTC as positive
    if m["start"] is None:
        return std, None
    dst = -_seconds(m["dst"]) if m["dst"] else std + 3600
    return std, Rule(std, dst, When.parse(m["start"]), When.parse(m["end"]))
