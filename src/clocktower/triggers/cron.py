"""Cron triggers: fire times of a cron expression in an IANA time zone.

The dialect lives in `cronparse`, the calendar matching in `cronmatch` and the
zone's offsets in `zonetable`; this module joins them under the DST rules of
Debian/Vixie cron (the ones cronsim implements):

- A *fixed-time* expression (neither the minute nor the hour field starts with
  `*`; a seconds field does not matter) names wall-clock times. One that falls
  in a spring-forward gap fires at the first instant after the gap (several
  collapse into that one); one that occurs twice in a fall-back fires once, at
  its first occurrence.
- Any other expression follows real time: every instant whose local time
  matches fires, so `*/15 * * * *` keeps firing every 15 real minutes through
  both transitions, and nothing fires at a local time that does not exist.

Everything is integer epoch seconds; see `cronmatch` for why. Fire times are
whole seconds, strictly after the instant asked about; a search gives up (and
returns None) after 400 years, a whole Gregorian calendar cycle, so nothing
loops forever. Expressions that can never fire (`0 0 30 2 *`) are rejected
when parsed.
"""

from __future__ import annotations

import math
import zoneinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from clocktower.model import InvalidSpec
from clocktower.triggers.crondescribe import describe_fields
from clocktower.triggers.cronmatch import DAY, LAST_DAY, CronSchedule
from clocktower.triggers.cronparse import WEEK, CronFields, invalid, parse_cron
from clocktower.triggers.zonetable import MAX_INSTANT, MIN_INSTANT, ZoneTable, zone_table

HORIZON_DAYS = 146097  # 400 years: the Gregorian calendar repeats after that


class CronTrigger:
    """A cron expression evaluated in a time zone (see the module docstring)."""

    __slots__ = ("_calm", "_schedule", "_table", "expr", "fixed_time", "job_id", "zone")

    def __init__(self, expr: str, tz: str | ZoneInfo = "UTC", *, job_id: str = "") -> None:
        self.expr = expr
        self.zone = tz if isinstance(tz, ZoneInfo) else load_zone(tz)
        self.job_id = job_id
        self._schedule = compile_cron(expr, job_id if "H" in expr or "h" in expr else "")
        self.fixed_time = self._schedule.fields.fixed_time
        self._table = zone_table(self.zone)
        # (offset, lo, hi): instants in [lo, hi) are far from any transition
        # (see ZoneTable.calm); moved along as the search moves on.
        self._calm = self._table.last_calm

    @property
    def fields(self) -> CronFields:
        """The parsed expression (H resolved for this job)."""
        return self._schedule.fields

    def next_after(self, ts: float) -> float | None:
        """The first fire time strictly after `ts` (epoch seconds), or None."""
        if not ts < MAX_INSTANT:
            if ts != ts:
                raise ValueError("next_after() needs an instant, not NaN")
            return None
        instant = math.floor(ts) + 1 if ts >= MIN_INSTANT else MIN_INSTANT
        offset, lo, hi = self._calm
        if not lo <= instant < hi:
            offset, lo, hi = self._calm = self._table.calm(instant)
            if not lo <= instant < hi:
                return self._next_near_transitions(instant, self._table)
        limit = min(instant // DAY + HORIZON_DAYS, LAST_DAY)
        found = self._schedule.next_wall(instant + offset, limit)
        if found is None:
            return None
        if found - offset < hi:
            return float(found - offset)
        return self._next_near_transitions(instant, self._table)

    def _next_near_transitions(self, instant: int, table: ZoneTable) -> float | None:
        if self.fixed_time:
            return self._next_fixed(instant, table)
        return self._next_real(instant, table)

    def _next_fixed(self, instant: int, table: ZoneTable) -> float | None:
        """Walk wall-clock time, then place the wall time found (gap: its end;
        fold: its first occurrence)."""
        wall = table.earliest_wall(instant)
        found = self._schedule.next_wall(wall, _limit(wall))
        return None if found is None else float(table.resolve(found))

    def _next_real(self, instant: int, table: ZoneTable) -> float | None:
        """Within each stretch of constant offset, local time is instant + offset;
        take the first match inside the stretch, else try the next stretch."""
        limit = _limit(instant)
        while True:
            offset, end = table.offset_at(instant)
            found = self._schedule.next_wall(instant + offset, limit)
            if found is None:
                return None
            if found - offset < end:
                return float(found - offset)
            instant = end

    def skip_reason(self, ts: float) -> str | None:
        """Cron has no excluded dates of its own."""
        return None

    def describe(self) -> str:
        """The schedule in English with its zone: "At 06:00 on Monday, Europe/Paris"."""
        return f"{describe_fields(self.fields)}, {self.zone.key or self.zone}"

    def __repr__(self) -> str:
        return f"CronTrigger({self.expr!r}, {self.zone.key!r})"


def describe_cron(expr: str, tz: str = "UTC", *, job_id: str = "") -> str:
    """`expr` in English with its zone; raises InvalidSpec when `expr` is wrong."""
    return CronTrigger(expr, tz, job_id=job_id).describe()


def load_zone(tz: str | ZoneInfo) -> ZoneInfo:
    """The IANA zone `tz` names; InvalidSpec (field "tz") if there is none."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidSpec(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Paris' or 'UTC'",
            field="tz",
        ) from None


@lru_cache(maxsize=1024)
def compile_cron(expr: str, job_id: str = "") -> CronSchedule:
    """Parse and check `expr` (cached: a schedule is immutable but for its caches)."""
    schedule = CronSchedule(parse_cron(expr, job_id))
    if not schedule.can_match():
        raise _never_fires(schedule.fields)
    return schedule


def _never_fires(fields: CronFields) -> InvalidSpec:
    _, _, _, dom, month, dow = fields.texts
    if fields.dow.days == WEEK:
        return invalid(f"day-of-month: {dom} never occurs in month {month}, so this never fires")
    return invalid(
        f"day-of-month: {dom} never falls on day-of-week {dow} in month {month}, "
        "so this never fires"
    )


def _limit(wall_or_instant: int) -> int:
    """The last day a search starting at this time may reach."""
    return min(wall_or_instant // DAY + HORIZON_DAYS, LAST_DAY)
