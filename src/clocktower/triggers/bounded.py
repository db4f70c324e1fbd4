"""Bounds and exclusions around any trigger.

Fire times before `start` or after `end` do not exist. Fire times on an
excluded local date (a holiday, evaluated in the trigger's zone) still exist,
so the engine sees them, but `skip_reason` says why they must be recorded as
skipped instead of run: nothing disappears silently.
"""

from __future__ import annotations

import math
from datetime import date
from zoneinfo import ZoneInfo

from clocktower.triggers.base import Trigger
from clocktower.triggers.localtime import format_local, local_date


class BoundedTrigger:
    """`inner`, limited to [start, end] (epoch seconds, both inclusive), minus excluded dates."""

    def __init__(
        self,
        inner: Trigger,
        start: float | None = None,
        end: float | None = None,
        exclude: tuple[date, ...] = (),
    ) -> None:
        if start is not None and end is not None and end < start:
            raise ValueError("end is before start")
        self.inner = inner
        self.start = start
        self.end = end
        self.exclude = tuple(sorted(set(exclude)))

    @property
    def zone(self) -> ZoneInfo:
        return self.inner.zone

    def next_after(self, ts: float) -> float | None:
        if self.start is not None and ts < self.start:
            ts = math.nextafter(self.start, -math.inf)  # the start itself may fire
        fire = self.inner.next_after(ts)
        if fire is None or (self.end is not None and fire > self.end):
            return None
        return fire

    def skip_reason(self, ts: float) -> str | None:
        day = local_date(ts, self.zone)
        if day in self.exclude:
            return f"excluded date {day.isoformat()}"
        return self.inner.skip_reason(ts)

    def describe(self) -> str:
        parts = [self.inner.describe()]
        if self.start is not None:
            parts.append(f"from {format_local(self.start, self.zone)}")
        if self.end is not None:
            parts.append(f"until {format_local(self.end, self.zone)}")
        if self.exclude:
            parts.append("except on " + ", ".join(d.isoformat() for d in self.exclude))
        return "; ".join(parts)

    def __repr__(self) -> str:
        return (
            f"BoundedTrigger({self.inner!r}, start={self.start!r}, end={self.end!r}, "
            f"exclude={self.exclude!r})"
        )
