"""Property tests: cron fire times against cronsim and against the DST rules.

Three oracles:

1. cronsim itself, wherever its semantics are Clocktower's: 5-field
   fixed-time expressions in every zone, and any expression in zones whose
   transitions are whole hours away from midnight. (cronsim treats a 6-field
   fixed time as real time, returns an instant before the start when asked
   during the second pass of a fold, and in real-time mode steps whole hours
   from a replaced minute, which skips existing times after Lord Howe's and
   Chatham's shifts and lands on nonexistent midnights in Santiago and Apia;
   see test_cron_dst.py for each, by name.)
2. A reference written from the DESIGN rules, using cronsim only as a matcher
   of naive wall times: fixed time = each matching wall time at its first
   occurrence or the end of its gap; real time = every instant whose local
   time matches. Every zone, every expression kind.
3. Invariants for the whole dialect (H, L-n, W, #-n included): strictly
   increasing whole seconds, every fire a matching local time (or a gap end
   for a fixed time), and day masks equal to a plain evaluation of the
   day-of-month and day-of-week items.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from cronsim import CronSim
from hypothesis import given
from hypothesis import strategies as st

from clocktower.triggers.cron import CronTrigger
from clocktower.triggers.cronmatch import CronSchedule
from clocktower.triggers.cronparse import parse_cron
from clocktower.triggers.zonetable import probe_offset, year_start, zone_table

COUNT = 20
WHOLE_HOUR_ZONES = ["UTC", "Europe/Paris", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
NO_DST_ZONES = ["UTC", "Asia/Kolkata"]
ODD_ZONES = ["Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham", "Pacific/Apia"]
ALL_ZONES = WHOLE_HOUR_ZONES + ODD_ZONES
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
LO_2010, HI_2030 = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp()), year_start(2031)


# --------------------------------------------------------------------------- expressions


def value(lo: int, hi: int, names: list[str] | None) -> st.SearchStrategy[tuple[int, str]]:
    """A value and how it is written: a number, or a name in any case."""
    numbers = st.integers(lo, hi).map(lambda v: (v, str(v)))
    if not names:
        return numbers
    first = 0 if names is DAYS else 1
    spellings = (str.upper, str.lower, str.capitalize)
    named = st.tuples(st.integers(0, len(names) - 1), st.sampled_from(spellings)).map(
        lambda t: (t[0] + first, t[1](names[t[0]]))
    )
    return numbers | named


@st.composite
def plain_item(draw: st.DrawFn, lo: int, hi: int, names: list[str] | None = None) -> str:
    """*, n, a-b, */s, a-b/s or a/s: what cronsim and Clocktower both read."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return "*"
    if kind == 1:
        return f"*/{draw(st.integers(1, min(hi, 20)))}"
    a, b = sorted([draw(value(lo, hi, names)), draw(value(lo, hi, names))])
    if kind <= 3:
        return a[1]
    if kind == 4:
        return f"{a[1]}-{b[1]}"
    step = draw(st.integers(1, min(hi, 20)))
    if b[0] > a[0]:  # cronsim reads a-a/s as a/s (a to the end)
        return f"{a[1]}-{b[1]}/{step}"
    return f"{a[1]}/{step}"


def field(item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(item, min_size=1, max_size=3).map(",".join)


def dom_item() -> st.SearchStrategy[str]:
    return plain_item(1, 31) | st.sampled_from(["L", "LW", "l"])


def dow_item() -> st.SearchStrategy[str]:
    nth = st.tuples(value(0, 7, DAYS), st.integers(1, 5)).map(lambda t: f"{t[0][1]}#{t[1]}")
    last = st.integers(0, 7).map(lambda d: f"{d}L")
    return plain_item(0, 7, DAYS) | nth | last


@st.composite
def cronsim_expressions(draw: st.DrawFn) -> str:
    """Expressions in the dialect cronsim shares with Clocktower."""
    fields = [
        draw(field(plain_item(0, 59))),
        draw(field(plain_item(0, 23))),
        draw(field(dom_item())),
        draw(field(plain_item(1, 12, MONTHS))),
        draw(field(dow_item())),
    ]
    if draw(st.integers(0, 9)) < 3:
        fields.insert(0, draw(field(plain_item(0, 59))))
    return " ".join(fields)


def is_fixed(expr: str) -> bool:
    minute, hour = expr.split()[-5:-3]
    return not minute.startswith("*") and not hour.startswith("*")


def cronsim_zones(expr: str) -> list[str]:
    """Where cronsim's answer is Clocktower's (see the module docstring)."""
    six, fixed = len(expr.split()) == 6, is_fixed(expr)
    zones = NO_DST_ZONES if six and fixed else WHOLE_HOUR_ZONES
    return zones + ODD_ZONES if fixed and not six else zones


# --------------------------------------------------------------------------- instants


@cache
def transitions(zone: str) -> list[int]:
    table = zone_table(ZoneInfo(zone))
    return [t for y in range(2010, 2031) for t in table.year(year_start(y)).transitions]


@st.composite
def start_instant(draw: st.DrawFn, zone: str, spread: int = 86400) -> float:
    """Anywhere in 2010-2030, or within `spread` seconds of one of the zone's
    transitions (now and then within two seconds of it)."""
    near = transitions(zone)
    if near and draw(st.booleans()):
        edge = st.integers(-2, 1) if draw(st.integers(0, 3)) == 0 else st.integers(-spread, spread)
        base = draw(st.sampled_from(near)) + draw(edge)
    else:
        base = draw(st.integers(LO_2010, HI_2030))
    return base + draw(st.sampled_from([0.0, 0.0, 0.25, 0.999]))


@cache
def transition_hours(zone: str) -> list[int]:
    """Local hours on either side of the zone's transitions."""
    tz = ZoneInfo(zone)
    hours = {datetime.fromtimestamp(t + d, tz).hour for t in transitions(zone) for d in (-1, 0)}
    return sorted(hours) or [0]


@st.composite
def dst_expressions(draw: st.DrawFn, zone: str) -> str:
    """Daily expressions whose hours are those the zone's clocks jump over or repeat."""
    hour = draw(st.sampled_from(transition_hours(zone)))
    hours = draw(
        st.sampled_from([str(hour), f"{max(hour - 1, 0)}-{min(hour + 1, 23)}", "*", "*/2"])
    )
    minutes = draw(field(plain_item(0, 59)) | st.sampled_from(["0", "30", "*/15", "0-59/10"]))
    days = draw(st.sampled_from(["* * *", "* * *", "1-31 * *", "* * 0-6", "L * *"]))
    expr = f"{minutes} {hours} {days}"
    if draw(st.integers(0, 3)) == 0:
        expr = f"{draw(st.sampled_from(['0', '30', '*/20']))} {expr}"
    return expr


def ours(expr: str, zone: str, start: float, count: int = COUNT) -> list[float]:
    trigger, out, ts = CronTrigger(expr, zone), [], start
    while len(out) < count:
        found = trigger.next_after(ts)
        if found is None:
            break
        out.append(found)
        ts = found
    return out


def from_cronsim(expr: str, zone: str, start: float, count: int = COUNT) -> list[float]:
    """cronsim's fire times after `start`, without the instants <= start it may
    repeat when started in the second pass of a fold."""
    out: list[float] = []
    for dt in CronSim(expr, datetime.fromtimestamp(start, ZoneInfo(zone))):
        if dt.timestamp() > start:
            out.append(dt.timestamp())
        if len(out) == count:
            break
    return out


# --------------------------------------------------------------------------- 1. cronsim


@given(st.data())
def test_equals_cronsim_where_semantics_agree(data: st.DataObject) -> None:
    expr = data.draw(cronsim_expressions(), label="expr")
    zone = data.draw(st.sampled_from(cronsim_zones(expr)), label="zone")
    start = data.draw(start_instant(zone), label="start")
    try:
        expected = from_cronsim(expr, zone, start)
    except Exception as exc:  # cronsim rejects it: so must Clocktower
        assert_rejected(expr, exc)
        return
    if rejected(expr):  # impossible: cronsim searches 50 years in vain
        assert expected == []
        return
    got = ours(expr, zone, start)
    assert got[: len(expected)] == expected
    if len(expected) < COUNT and len(got) > len(expected):  # cronsim gives up after 50 years
        last = expected[-1] if expected else start
        assert got[len(expected)] - last > 50 * 365 * 86400


def rejected(expr: str) -> bool:
    try:
        CronTrigger(expr)
    except ValueError:
        return True
    return False


def assert_rejected(expr: str, exc: Exception) -> None:
    assert rejected(expr), f"cronsim rejects {expr!r} ({exc!r}) but Clocktower accepts it"


# --------------------------------------------------------------------------- 2. reference


def offsets_around(zone: ZoneInfo, instant: float) -> list[int]:
    """The zone's offsets within 30 hours of `instant` (each lasts far longer than 3)."""
    return [probe_offset(zone, int(instant) + h * 3600) for h in range(-30, 31, 3)]


def naive(seconds: float) -> datetime:
    return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def occurrences(zone: ZoneInfo, wall: datetime) -> list[int]:
    """Every instant whose local time is `wall` (none in a gap, two in a fold)."""
    found = set()
    for fold in (0, 1):
        instant = int(wall.replace(tzinfo=zone, fold=fold).timestamp())
        if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) == wall:
            found.add(instant)
    return sorted(found)


def gap_end(zone: ZoneInfo, wall: datetime) -> int:
    lo = int(wall.replace(tzinfo=zone, fold=1).timestamp())  # before the transition
    hi = int(wall.replace(tzinfo=zone, fold=0).timestamp())  # after it
    after = probe_offset(zone, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if probe_offset(zone, mid) == after else (mid, hi)
    return hi


def reference(expr: str, zone_name: str, start: float, count: int = COUNT) -> list[float]:
    """The DESIGN's rules, with cronsim matching naive wall times only."""
    zone = ZoneInfo(zone_name)
    first_wall = naive(math.floor(start) + min(offsets_around(zone, start)))
    walls = CronSim(expr, first_wall - timedelta(seconds=1))
    found: list[int] = []
    for wall in walls:
        if is_fixed(expr):
            hits = occurrences(zone, wall)[:1] or [gap_end(zone, wall)]
        else:
            hits = occurrences(zone, wall)
        found = sorted({*found, *(h for h in hits if h > start)})
        if len(found) >= count:
            kth = found[count - 1]
            if wall > naive(kth + max(offsets_around(zone, kth))):
                break
        if wall.year > datetime.fromtimestamp(start, UTC).year + 50:
            break
    return [float(t) for t in found[:count]]


@given(st.data())
def test_follows_the_dst_rules_in_every_zone(data: st.DataObject) -> None:
    expr = data.draw(cronsim_expressions(), label="expr")
    zone = data.draw(st.sampled_from(ALL_ZONES), label="zone")
    start = data.draw(start_instant(zone), label="start")
    try:
        CronSim(expr, naive(0))
    except Exception as exc:
        assert_rejected(expr, exc)
        return
    expected = reference(expr, zone, start)
    if rejected(expr):
        assert expected == []
        return
    assert ours(expr, zone, start, len(expected)) == expected


@given(st.data())
def test_dst_edges(data: st.DataObject) -> None:
    """Both oracles where DST matters most: hours the clocks skip or repeat,
    starting within three hours of a transition."""
    zone = data.draw(st.sampled_from([z for z in ALL_ZONES if z not in NO_DST_ZONES]))
    expr = data.draw(dst_expressions(zone), label="expr")
    start = data.draw(start_instant(zone, spread=3 * 3600), label="start")
    got = ours(expr, zone, start)
    assert got == reference(expr, zone, start)
    if zone in cronsim_zones(expr):
        assert got == from_cronsim(expr, zone, start)


# --------------------------------------------------------------------------- 3. invariants


@st.composite
def any_expression(draw: st.DrawFn) -> str:
    """The whole dialect, H and the extensions cronsim lacks included."""
    h = st.sampled_from(["H", "H/15", "H(0-29)", "H(10-20)/3", "h"])
    dom = dom_item() | st.sampled_from(["L-3", "L-30", "15W", "1W", "31W", "LW", "H"])
    dow = dow_item() | st.sampled_from(["5#-1", "MON#-2", "FRIL", "H"])
    fields = [
        draw(field(plain_item(0, 59) | h)),
        draw(field(plain_item(0, 23) | h)),
        draw(field(dom)),
        draw(field(plain_item(1, 12, MONTHS))),
        draw(field(dow)),
    ]
    if draw(st.booleans()):
        fields.insert(0, draw(field(plain_item(0, 59) | h)))
    return " ".join(fields)


@given(
    any_expression(),
    st.sampled_from(ALL_ZONES),
    st.floats(min_value=-3e9, max_value=8e9) | st.floats(min_value=-7e10, max_value=3e11),
    st.text(max_size=12),
)
def test_successive_fires_increase_and_match(
    expr: str, zone_name: str, start: float, job_id: str
) -> None:
    try:
        trigger = CronTrigger(expr, zone_name, job_id=job_id)
    except ValueError:
        return  # an impossible day, such as L-30 in February only
    zone, ts = ZoneInfo(zone_name), start
    for _ in range(COUNT):
        found = trigger.next_after(ts)
        if found is None:
            break
        assert isinstance(found, float) and found == int(found) and found > ts
        local = datetime.fromtimestamp(found, zone)
        ends_gap = probe_offset(zone, int(found) - 1) < probe_offset(zone, int(found))
        assert wall_matches(trigger, local) or (trigger.fixed_time and ends_gap)
        ts = found


def wall_matches(trigger: CronTrigger, local: datetime) -> bool:
    f = trigger.fields
    return bool(
        f.second_bits >> local.second & 1
        and f.minute_bits >> local.minute & 1
        and f.hour_bits >> local.hour & 1
        and f.month_bits >> local.month & 1
        and plain_day_match(trigger, local.date())
    )


def plain_day_match(trigger: CronTrigger, day: date) -> bool:
    """Days by their definitions: L, L-n, nW, LW, #n, #-n, nL evaluated directly."""
    f = trigger.fields
    length = calendar.monthrange(day.year, day.month)[1]
    weekday = weekday_of(day)
    by_dom = bool(f.dom.days >> day.day & 1)
    by_dom |= any(day.day == length - n for n in f.dom.before_last)
    by_dom |= any(day.day == nearest(n, day) for n in f.dom.nearest_weekday if n <= length)
    by_dom |= f.dom.last_weekday and day.day == nearest(length, day)
    by_dow = bool(f.dow.days >> weekday & 1)
    for wd, n in f.dow.nth:
        same = [d for d in range(1, length + 1) if weekday_of(day.replace(day=d)) == wd]
        by_dow |= len(same) >= abs(n) and day.day == same[n - 1 if n > 0 else n]
    if f.day_or:
        return by_dom or by_dow
    return by_dom and by_dow


def weekday_of(day: date) -> int:
    return (day.weekday() + 1) % 7  # 0 = Sunday


def nearest(n: int, day: date) -> int:
    """The weekday nearest day n of day's month, staying in the month."""
    length = calendar.monthrange(day.year, day.month)[1]
    wd = date(day.year, day.month, n).weekday()  # 5 = Saturday, 6 = Sunday
    if wd == 5:
        return n + 2 if n == 1 else n - 1
    if wd == 6:
        return n - 2 if n == length else n + 1
    return n


@given(any_expression(), st.integers(1990, 2060), st.integers(1, 12))
def test_month_masks_match_the_plain_definitions(expr: str, year: int, month: int) -> None:
    try:
        trigger = CronTrigger(expr)
    except ValueError:
        return
    schedule = CronSchedule(parse_cron(expr))
    mask = schedule.month_mask(year, month)
    length = calendar.monthrange(year, month)[1]
    for d in range(1, length + 1):
        day = date(year, month, d)
        in_month = bool(trigger.fields.month_bits >> month & 1)
        expected = in_month and plain_day_match(trigger, day)
        assert bool(mask >> d & 1) == expected, (expr, day)
