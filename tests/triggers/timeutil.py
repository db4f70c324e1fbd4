"""Instants for trigger tests, written the way a person reads them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from clocktower.triggers.base import Trigger

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def ts(text: str) -> float:
    """Epoch seconds of an ISO-8601 instant that carries its offset."""
    dt = datetime.fromisoformat(text)
    assert dt.tzinfo is not None, f"{text} needs an offset"
    return dt.timestamp()


def wall(seconds: float, zone: ZoneInfo) -> str:
    """An instant as local ISO-8601 with its offset, to compare with a literal."""
    return datetime.fromtimestamp(seconds, zone).isoformat()


def take(trigger: Trigger, after: float, n: int) -> list[float]:
    """The next `n` fire times after `after` (fewer when the trigger ends)."""
    out: list[float] = []
    current = trigger.next_after(after)
    while current is not None and len(out) < n:
        out.append(current)
        current = trigger.next_after(current)
    return out
