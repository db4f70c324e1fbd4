"""The interface every trigger implements.

Time is an argument: triggers never read the clock. Instants are epoch
seconds (UTC) as numbers, because the engine and the store compare and
advance them millions of times and a float costs nothing next to a datetime.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo


@runtime_checkable
class Trigger(Protocol):
    """When a job is due."""

    @property
    def zone(self) -> ZoneInfo:
        """The IANA zone the trigger is evaluated in."""
        ...

    def next_after(self, ts: float) -> float | None:
        """The first fire time strictly after `ts` (epoch seconds, UTC), or None when
        the trigger has no more fire times. Never returns a value <= ts."""
        ...

    def skip_reason(self, ts: float) -> str | None:
        """Why the fire time `ts` must be recorded as skipped (an excluded date),
        or None when it should run."""
        ...

    def describe(self) -> str:
        """The schedule in English, with its zone: "At 06:00 on Monday, Europe/Paris"."""
        ...


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def to_timestamp(dt: datetime) -> float:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no zone")
    return dt.timestamp()


def fire_times(trigger: Trigger, after: float, until: float | None = None) -> Iterator[float]:
    """Successive fire times strictly after `after`, up to and including `until`."""
    ts = trigger.next_after(after)
    while ts is not None and (until is None or ts <= until):
        yield ts
        ts = trigger.next_after(ts)
