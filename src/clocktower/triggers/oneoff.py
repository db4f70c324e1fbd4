"""`at` triggers: one instant.

An instant with an offset (`2026-12-01T09:00:00+01:00`, `…Z`) means exactly
that instant. A naive one (`2026-12-01 09:00`) is a wall time in the trigger's
zone: in a spring-forward gap it means the first instant after the gap, in a
fall-back fold its first occurrence.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from clocktower.model import InvalidSpec
from clocktower.triggers.localtime import format_local, load_zone, to_instant
from clocktower.triggers.timetext import parse_clock

_PREFIX = re.compile(r"^(?:once\s+)?(?:at\s+|on\s+)?", re.IGNORECASE)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_AND_CLOCK = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\s+AT)?\s+(.+)")
_UTC_SUFFIX = re.compile(r"\s*(?:UTC|GMT)$")


def parse_instant(text: str) -> datetime:
    """Read an instant: ISO-8601 with or without offset, "2026-12-01 09:00", "… 3pm".

    The result is naive when the text gives no offset. Raises ValueError.
    """
    s = _PREFIX.sub("", " ".join(text.split())).upper()
    if _UTC_SUFFIX.search(s):
        s = _UTC_SUFFIX.sub("", s) + "+00:00"
    if _DATE_ONLY.fullmatch(s):
        raise ValueError(f"{text.strip()!r} has no time of day: write '{s} 09:00' or '{s}T09:00'")
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        pass
    if m := _DATE_AND_CLOCK.fullmatch(s):
        return datetime.combine(_parse_date(m[1], text), parse_clock(m[2]))
    raise ValueError(
        f"{text.strip()!r} is not an instant: use ISO-8601 such as '2026-12-01T09:00:00+01:00', "
        "'2026-12-01T08:00:00Z', or '2026-12-01 09:00' (in the trigger's zone)"
    )


def _parse_date(text: str, whole: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} in {whole.strip()!r} is not a date (YYYY-MM-DD)") from None


class AtTrigger:
    """Fires once, at one instant."""

    def __init__(
        self, expr: str | datetime, tz: str | ZoneInfo = "UTC", *, job_id: str = ""
    ) -> None:
        self.zone = load_zone(tz, job_id=job_id)
        if isinstance(expr, datetime):
            when = expr
            self.expr = expr.isoformat()
        else:
            self.expr = expr
            try:
                when = parse_instant(expr)
            except ValueError as exc:
                raise InvalidSpec(str(exc), field="at", job=job_id or None) from None
        self.instant = to_instant(when, self.zone)
        self.naive = when.tzinfo is None

    def next_after(self, ts: float) -> float | None:
        return self.instant if self.instant > ts else None

    def skip_reason(self, ts: float) -> str | None:
        return None

    def describe(self) -> str:
        return f"Once at {format_local(self.instant, self.zone)}, {self.zone.key}"

    def __repr__(self) -> str:
        return f"AtTrigger({self.expr!r}, {self.zone.key!r})"
