"""`every` triggers: a fixed interval of elapsed time, or every N days at a local time.

Elapsed (`every 90s`, `7d`, `1h30m`): fire times are anchor + k * period in
real seconds. The anchor is the trigger's `start` when given, otherwise the
Unix epoch (1970-01-01 00:00 UTC), so the phase never depends on when the
service (re)started: `every 10 minutes` fires at :00, :10, … UTC minutes, and
`7d` fires every 168 real hours, whatever DST does to the wall clock.

Calendar (`7 days at 16:00`): the same local time every N days, days counted
from the local date of `start` (or 1970-01-01). A time in a spring-forward gap
fires at the first instant after the gap; one that occurs twice fires once, at
its first occurrence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from clocktower.model import InvalidSpec
from clocktower.triggers import timetext
from clocktower.triggers.localtime import (
    format_local,
    load_zone,
    local_date,
    resolve_local_date,
    to_instant,
)

EPOCH_DATE = date(1970, 1, 1)
_CALENDAR = re.compile(r"(?:(\d+)\s*)?(days?|d|weeks?|w)\s+at\s+(.+)")


@dataclass(frozen=True, slots=True)
class Elapsed:
    """Every `seconds` real seconds."""

    seconds: int

    def canonical(self) -> str:
        return timetext.format_duration_short(self.seconds)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Every `days` days at the local time `at`."""

    days: int
    at: time

    def canonical(self) -> str:
        unit = "day" if self.days == 1 else "days"
        return f"{self.days} {unit} at {timetext.format_clock(self.at)}"


Interval = Elapsed | Calendar


def parse_every(text: str) -> Interval:
    """Read an `every` expression, with or without the word "every".

    Raises ValueError with a message that names the bad part.
    """
    s = " ".join(text.strip().lower().split())
    s = s.removeprefix("every ").strip()
    if m := _CALENDAR.fullmatch(s):
        count = int(m[1]) if m[1] is not None else 1
        days = count * (7 if m[2].startswith("w") else 1)
        if days <= 0:
            raise ValueError(f"{text.strip()!r}: the number of days must be at least 1")
        return Calendar(days, timetext.parse_clock(m[3]))
    if " at " in f" {s} ":
        raise ValueError(
            f"{text.strip()!r}: a time of day goes with whole days only, "
            "as in '7 days at 16:00' or '2 weeks at 09:00'"
        )
    return Elapsed(timetext.parse_duration(s))


class EveryTrigger:
    """A fixed interval (elapsed time) or every N days at a local time (calendar)."""

    def __init__(
        self,
        expr: str,
        tz: str | ZoneInfo = "UTC",
        *,
        start: datetime | float | None = None,
        job_id: str = "",
    ) -> None:
        self.expr = expr
        self.zone = load_zone(tz, job_id=job_id)
        try:
            self.interval: Interval = parse_every(expr)
        except ValueError as exc:
            raise InvalidSpec(str(exc), field="every", job=job_id or None) from None
        self.start: float | None = None if start is None else to_instant(start, self.zone)
        self.anchor = self.start if self.start is not None else 0.0
        self.anchor_date = (
            local_date(self.start, self.zone) if self.start is not None else EPOCH_DATE
        )

    @property
    def calendar(self) -> bool:
        """True for "N days at HH:MM" (local time), False for elapsed time."""
        return isinstance(self.interval, Calendar)

    @property
    def canonical(self) -> str:
        """The expression in normal form: "90s", "7d", "7 days at 16:00"."""
        return self.interval.canonical()

    def next_after(self, ts: float) -> float | None:
        if self.start is not None and ts < self.start:
            ts = math.nextafter(self.start, -math.inf)  # the start itself may fire
        if isinstance(self.interval, Calendar):
            return self._next_calendar(ts, self.interval)
        return self._next_elapsed(ts, self.interval.seconds)

    def _next_elapsed(self, ts: float, period: int) -> float:
        k = math.floor((ts - self.anchor) / period) + 1
        while self.anchor + (k - 1) * period > ts:  # guard against float rounding
            k -= 1
        while self.anchor + k * period <= ts:
            k += 1
        return self.anchor + k * period

    def _next_calendar(self, ts: float, interval: Calendar) -> float | None:
        try:
            day = self._first_day_from(local_date(ts, self.zone) - timedelta(days=1), interval)
            while True:  # at most a few rounds: day D's fire time is after D begins
                fire = resolve_local_date(day, interval.at, self.zone)
                if fire > ts:
                    return fire
                day += timedelta(days=interval.days)
        except (OverflowError, ValueError):  # past year 9999
            return None

    def _first_day_from(self, day: date, interval: Calendar) -> date:
        """The first date on or after `day` that is a whole number of periods from the anchor."""
        if self.start is not None and day < self.anchor_date:
            return self.anchor_date
        behind = (day - self.anchor_date).days % interval.days
        return day + timedelta(days=(interval.days - behind) % interval.days)

    def skip_reason(self, ts: float) -> str | None:
        return None

    def describe(self) -> str:
        if isinstance(self.interval, Calendar):
            text = self._describe_calendar(self.interval)
        else:
            text = self._describe_elapsed(self.interval.seconds)
        return f"{text}, {self.zone.key}"

    def _describe_elapsed(self, seconds: int) -> str:
        text = f"Every {timetext.format_duration(seconds)}"
        if seconds >= 86400:
            text += f" of elapsed time ({seconds / 3600:g} real hours)"
        return text + self._starting()

    def _describe_calendar(self, interval: Calendar) -> str:
        at = timetext.format_clock(interval.at)
        if interval.days == 1:
            return f"Every day at {at}{self._starting()}"
        text = f"Every {interval.days} days at {at}"
        return text + (self._starting() or f", counting days from {self.anchor_date}")

    def _starting(self) -> str:
        if self.start is None:
            return ""
        return f", starting {format_local(self.start, self.zone)}"

    def __repr__(self) -> str:
        return f"EveryTrigger({self.expr!r}, {self.zone.key!r}, start={self.start!r})"
