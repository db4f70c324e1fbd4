"""UTC offsets of a zone as integer transitions, for schedule arithmetic in seconds.

Cron evaluation asks two questions millions of times: "what is the UTC offset
at this instant, and until when does it hold?" and "which instant is this wall
time?". Answering them with datetimes costs a microsecond or more each; this
table answers them with a dict lookup and a bisect on plain ints.

The transitions of a year are computed the first time the year is needed and
kept for the life of the process, like zoneinfo keeps its parsed files. They
come from the zone's TZif file, read as zoneinfo reads it (see `tzif`), once
checked against the zone's own answers. When the file cannot be read (a zone
built from a stream) or disagrees, the zone is probed instead: its offset
once per UTC day, each change pinned to the second by bisection. Daily
probing finds every transition as long as two offset changes never come less
than a day apart; in the whole tz database the closest pair is four days
apart (Africa/Freetown, 1930s).

Wall times follow the rules of fixed-time cron (see `resolve`): a wall time in
a spring-forward gap means the first instant after the gap; one that occurs
twice in a fall-back means its first occurrence.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from clocktower.triggers.tzif import ZoneRules, read_rules

DAY = 86400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
FIRST_YEAR = 2  # datetime spans years 1-9999; keep a year of margin for offsets
LAST_YEAR = 9998
MIN_INSTANT = (date(FIRST_YEAR, 1, 1).toordinal() - EPOCH_ORDINAL) * DAY
MAX_INSTANT = (date(LAST_YEAR + 1, 1, 1).toordinal() - EPOCH_ORDINAL) * DAY - 1
_NEAR = 2 * DAY  # no offset is larger than a day, so a wall time is within this of its instant
_FAR_PAST, _FAR_FUTURE = -(1 << 62), 1 << 62


def year_start(year: int) -> int:
    """Epoch seconds of January 1st, 00:00 UTC, of `year`."""
    return (date(year, 1, 1).toordinal() - EPOCH_ORDINAL) * DAY


def year_of(instant: int) -> int:
    """The UTC year of an instant (clamped to the years a table covers)."""
    instant = min(max(instant, MIN_INSTANT), MAX_INSTANT)
    return date.fromordinal(instant // DAY + EPOCH_ORDINAL).year


def probe_offset(zone: ZoneInfo, instant: int) -> int:
    """The UTC offset of `zone` at `instant`, in seconds, asked of zoneinfo."""
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    if offset is None:  # pragma: no cover - a ZoneInfo always knows its offset
        raise ValueError(f"{zone} has no UTC offset at {instant}")
    return offset.days * DAY + offset.seconds


@dataclass(frozen=True, slots=True)
class Year:
    """The offsets of one zone over one UTC year [start, end).

    `offsets[0]` holds from `start`; `offsets[i + 1]` holds from `transitions[i]`.
    """

    start: int
    end: int
    transitions: tuple[int, ...]
    offsets: tuple[int, ...]

    def offset_at(self, instant: int) -> tuple[int, int]:
        """The offset at `instant` and the instant it stops holding (a transition
        or the end of the year, whichever comes first)."""
        i = bisect_right(self.transitions, instant)
        end = self.transitions[i] if i < len(self.transitions) else self.end
        return self.offsets[i], end


def scan_year(zone: ZoneInfo, year: int) -> Year:
    """Probe `zone` once per day of `year` and pin each offset change to the second."""
    start, end = year_start(year), year_start(year + 1)
    first = probe_offset(zone, start)
    transitions: list[int] = []
    offsets = [first]
    at, offset = start, first
    while at < end:
        step = min(at + DAY, end)
        probed = probe_offset(zone, step)
        if probed == offset:
            at = step
            continue
        at = _first_change(zone, at, step, offset)
        offset = probe_offset(zone, at)
        transitions.append(at)
        offsets.append(offset)
    return Year(start, end, tuple(transitions), tuple(offsets))


def rules_year(rules: ZoneRules, year: int) -> Year:
    """The offsets of `year` computed from the zone's file (see `tzif`)."""
    start, end = year_start(year), year_start(year + 1)
    transitions: list[int] = []
    offsets = [rules.offset_at(start, year)]
    for at in rules.changes(start, end, year):
        offset = rules.offset_at(at, year)
        if offset != offsets[-1]:
            transitions.append(at)
            offsets.append(offset)
    return Year(start, end, tuple(transitions), tuple(offsets))


def agrees(zone: ZoneInfo, rules: ZoneRules) -> bool:
    """Whether the rules read from the file give the zone's own offsets around
    the transitions of a few sample years."""
    for year in (1970, 2000, 2025, 2050, 2100):
        computed = rules_year(rules, year)
        if probe_offset(zone, computed.start) != computed.offsets[0]:
            return False
        for at, before, after in zip(
            computed.transitions, computed.offsets, computed.offsets[1:], strict=False
        ):
            if probe_offset(zone, at - 1) != before or probe_offset(zone, at) != after:
                return False
    return True


def _first_change(zone: ZoneInfo, lo: int, hi: int, offset: int) -> int:
    """The first instant in (lo, hi] whose offset is not `offset` (hi's is not)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe_offset(zone, mid) == offset:
            lo = mid
        else:
            hi = mid
    return hi


class ZoneTable:
    """The offsets of one zone, year by year, computed on first use.

    A zone whose offset never changes (UTC, Etc/GMT+5) has no years: its one
    calm stretch covers all time.
    """

    __slots__ = ("_last", "_lock", "_rules", "_years", "fixed", "last_calm", "zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.fixed = fixed_offset(zone)
        self._years: dict[int, Year] = {}
        self._lock = threading.Lock()
        if self.fixed is not None:
            self._rules = None
            self._last = Year(_FAR_PAST, _FAR_FUTURE, (), (self.fixed,))
            self.last_calm = (self.fixed, MIN_INSTANT, MAX_INSTANT + 1)
            return
        rules = read_rules(zone)
        self._rules = rules if rules is not None and agrees(zone, rules) else None
        self._last = self._load(year_of(0))
        self.last_calm = (0, 0, 0)  # the stretch `calm` found last (a start for new triggers)

    def year(self, instant: int) -> Year:
        """The year holding `instant` (computed if new)."""
        last = self._last
        if last.start <= instant < last.end or self.fixed is not None:
            return last
        if not MIN_INSTANT <= instant <= MAX_INSTANT:
            return self._beyond(instant)
        found = self._years.get(year_of(instant)) or self._load(year_of(instant))
        self._last = found
        return found

    def _beyond(self, instant: int) -> Year:
        """Before year 2 or after year 9998: the offset at that edge, for ever."""
        if instant < MIN_INSTANT:
            return Year(_FAR_PAST, MIN_INSTANT, (), (self.year(MIN_INSTANT).offsets[0],))
        return Year(MAX_INSTANT + 1, _FAR_FUTURE, (), (self.year(MAX_INSTANT).offsets[-1],))

    def _load(self, year: int) -> Year:
        with self._lock:
            found = self._years.get(year)
            if found is None:
                rules = self._rules
                found = scan_year(self.zone, year) if rules is None else rules_year(rules, year)
                self._years[year] = found
            return found

    def offset_at(self, instant: int) -> tuple[int, int]:
        """The offset at `instant` and the instant it stops holding (its next
        transition, or the end of the UTC year if none comes sooner)."""
        return self.year(instant).offset_at(instant)

    def calm(self, instant: int) -> tuple[int, int, int]:
        """(offset, lo, hi): around `instant`, a stretch [lo, hi) of constant offset
        with no transition within two days of it, where wall time is simply
        instant + offset both ways. Empty (lo >= hi) or not holding `instant`
        when a transition is near."""
        year = self.year(instant)
        trans = year.transitions
        i = bisect_right(trans, instant)
        lo = (trans[i - 1] if i else year.start) + _NEAR
        hi = (trans[i] if i < len(trans) else year.end) - _NEAR
        self.last_calm = calm = (year.offsets[i], lo, hi)
        return calm

    def segments_near(self, instant: int) -> list[tuple[int, int, int]]:
        """(start, end, offset) of each stretch of constant offset that meets
        [instant - 2 days, instant + 2 days], in order."""
        at, stop = instant - _NEAR, instant + _NEAR
        out: list[tuple[int, int, int]] = []
        while at < stop:
            offset, end = self.offset_at(at)
            if out and out[-1][2] == offset:  # a year boundary, not a transition
                out[-1] = (out[-1][0], end, offset)
            else:
                out.append((at, end, offset))
            at = end
        return out

    def earliest_wall(self, instant: int) -> int:
        """The earliest wall time (naive local seconds) that `resolve` maps to
        `instant` or later.

        Usually the wall time of `instant` itself; earlier when `instant` ends a
        spring-forward gap (the gap's wall times resolve to it), later when
        `instant` is the second pass of a fall-back (the wall times of the fold
        have already happened once).
        """
        year = self.year(instant)
        i = bisect_right(year.transitions, instant)
        wall = instant + year.offsets[i]
        if i > 0:
            change, before = year.transitions[i - 1], year.offsets[i - 1]
        elif instant - year.start >= _NEAR:
            return wall
        else:
            found = self._change_before(instant)
            if found is None:
                return wall
            change, before = found
        offset = wall - instant
        if before < offset and instant == change:
            return change + before  # the start of the gap
        if before > offset and wall < change + before:
            return change + before  # the end of the fold
        return wall

    def _change_before(self, instant: int) -> tuple[int, int] | None:
        """The last transition at or before `instant`, within two days, and the
        offset before it; None if there is none."""
        found = None
        previous: tuple[int, int, int] | None = None
        for segment in self.segments_near(instant):
            if segment[0] > instant:
                break
            if previous is not None:
                found = (segment[0], previous[2])
            previous = segment
        return found

    def resolve(self, wall: int) -> int:
        """The instant of a wall time: its first occurrence, or the end of the
        spring-forward gap it falls in."""
        year = self.year(wall)
        i = bisect_right(year.transitions, wall)
        quiet = (i == 0 or wall - year.transitions[i - 1] > _NEAR) and (
            i == len(year.transitions) or year.transitions[i] - wall > _NEAR
        )
        if quiet and year.start + _NEAR <= wall < year.end - _NEAR:
            return wall - year.offsets[i]
        return self._resolve_near_change(wall)

    def _resolve_near_change(self, wall: int) -> int:
        segments = self.segments_near(wall)
        for start, end, offset in segments:
            if start <= wall - offset < end:
                return wall - offset
        for start, _end, offset in segments:
            if start + offset > wall:
                return start  # the first instant after the gap
        return wall - segments[-1][2]  # pragma: no cover - a wall time is never past them all


_TABLES: dict[ZoneInfo, ZoneTable] = {}
_TABLES_LOCK = threading.Lock()


def zone_table(zone: ZoneInfo) -> ZoneTable:
    """The shared table of `zone` (one per zone per process)."""
    table = _TABLES.get(zone)
    if table is None:
        with _TABLES_LOCK:
            table = _TABLES.get(zone)
            if table is None:
                table = _TABLES[zone] = ZoneTable(zone)
    return table


def fixed_offset(zone: ZoneInfo) -> int | None:
    """The offset of a zone that never changes (UTC, Etc/GMT+5), else None."""
    offset = zone.utcoffset(None)
    return None if offset is None else offset.days * DAY + offset.seconds
