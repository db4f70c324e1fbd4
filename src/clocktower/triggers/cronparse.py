"""Reading cron expressions: fields, names, ranges, steps, L, W, #, H and macros.

The dialect is Debian/Vixie cron's, as cronsim implements it, plus a few
extensions (a seconds field first, `L-3`, `15W`, `5#-1`, Jenkins' `H`):

    ┌──────── second (optional, 0-59)
    │ ┌────── minute (0-59)
    │ │ ┌──── hour (0-23)
    │ │ │ ┌── day of month (1-31, L, L-3, LW, 15W)
    │ │ │ │ ┌ month (1-12 or JAN-DEC)
    │ │ │ │ │ ┌ day of week (0-7 or SUN-SAT, 0 and 7 are Sunday; 5L, 5#2, 5#-1)
    * * * * * *

Every error is an `InvalidSpec` with field "cron" whose message starts with
the cron field and names the bad token: "minute: 61 is out of range 0-59".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

from clocktower.model import InvalidSpec

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True, slots=True)
class Field:
    """One cron field: its name, value range, names and the range `H` picks from."""

    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()  # names[i] stands for lo + i
    hash_hi: int = -1  # top of H's default range (the field's own when -1)
    full: int = field(init=False)  # the mask of every value

    def __post_init__(self) -> None:
        object.__setattr__(self, "full", span_bits(self.lo, self.hi + 1))

    def out_of_range(self, token: str) -> InvalidSpec:
        return invalid(f"{self.name}: {token} is out of range {self.lo}-{self.hi}")


def span_bits(lo: int, stop: int) -> int:
    """The mask with bits lo to stop - 1 set."""
    return (1 << stop) - (1 << lo)


def range_bits(values: range) -> int:
    if values.step == 1:
        return span_bits(values.start, max(values.stop, values.start))
    mask = 0
    for value in values:
        mask |= 1 << value
    return mask


def bit_values(mask: int) -> tuple[int, ...]:
    """The set bits of a mask, lowest first."""
    return tuple(v for v in range(mask.bit_length()) if mask >> v & 1)


SECOND = Field("second", 0, 59)
MINUTE = Field("minute", 0, 59)
HOUR = Field("hour", 0, 23)
DOM = Field("day-of-month", 1, 31, hash_hi=28)  # H avoids days some months lack
MONTH = Field("month", 1, 12, MONTH_NAMES)
DOW = Field("day-of-week", 0, 7, DAY_NAMES, hash_hi=6)
WEEK = 0x7F  # every weekday, bit 0 = Sunday


def invalid(message: str) -> InvalidSpec:
    return InvalidSpec(message, field="cron")


class DaysOfMonth(NamedTuple):
    """The day-of-month field: plain days, and days that depend on the month."""

    days: int  # bit d set: day d (1-31)
    before_last: tuple[int, ...] = ()  # L-n (L is L-0)
    nearest_weekday: tuple[int, ...] = ()  # nW
    last_weekday: bool = False  # LW


class DaysOfWeek(NamedTuple):
    """The day-of-week field: weekdays (bit 0 is Sunday) and nth weekdays."""

    days: int
    nth: tuple[tuple[int, int], ...] = ()  # (weekday, n): n in 1..5, or -1..-5 from the end


class CronFields(NamedTuple):
    """A parsed cron expression, independent of any time zone. Time fields and
    months are bitmasks: bit v set means value v is allowed."""

    expr: str
    texts: tuple[str, ...]  # the six fields as written ("0" for an absent seconds field)
    second_bits: int
    minute_bits: int
    hour_bits: int
    dom: DaysOfMonth
    month_bits: int
    dow: DaysOfWeek
    day_or: bool  # both day fields restricted: a day matches either (Vixie cron)
    fixed_time: bool  # neither minute nor hour starts with '*'
    has_seconds: bool

    @property
    def seconds(self) -> tuple[int, ...]:
        return bit_values(self.second_bits)

    @property
    def minutes(self) -> tuple[int, ...]:
        return bit_values(self.minute_bits)

    @property
    def hours(self) -> tuple[int, ...]:
        return bit_values(self.hour_bits)

    @property
    def months(self) -> tuple[int, ...]:
        return bit_values(self.month_bits)


# --------------------------------------------------------------------------- expression


def parse_cron(expr: str, job_id: str = "") -> CronFields:
    """Parse `expr`; `job_id` seeds `H`. Raises InvalidSpec (field "cron")."""
    texts = _field_texts(expr)
    has_seconds = len(texts) == 6
    if not has_seconds:
        texts = ("0", *texts)
    if not expr.isascii():  # so that isdigit() below means 0-9
        raise _not_ascii(texts)
    sec, minute, hour, dom, month, dow = texts
    return CronFields(
        expr,
        texts,
        bits(SECOND, sec, job_id) if has_seconds else 1,  # second 0
        bits(MINUTE, minute, job_id),
        bits(HOUR, hour, job_id),
        days_of_month(dom, job_id),
        bits(MONTH, month, job_id),
        days_of_week(dow, job_id),
        dom[0] != "*" and dow[0] != "*",
        minute[0] != "*" and hour[0] != "*",
        has_seconds,
    )


def _field_texts(expr: str) -> tuple[str, ...]:
    parts = expr.split()
    if len(parts) == 5 or len(parts) == 6:
        return tuple(parts)
    if len(parts) == 1 and parts[0].startswith("@"):
        return tuple(_macro(parts[0]).split())
    if not parts:
        raise invalid("the cron expression is empty")
    if len(parts) == 7:
        raise invalid(f"{expr.strip()!r} has 7 fields; a year field is not supported")
    raise invalid(
        f"{expr.strip()!r} has {len(parts)} field{'s' if len(parts) > 1 else ''}: "
        "expected 5 (minute hour day-of-month month day-of-week) or 6 with seconds first"
    )


def _not_ascii(texts: tuple[str, ...]) -> InvalidSpec:
    fields = (SECOND, MINUTE, HOUR, DOM, MONTH, DOW)
    name, text = next((f.name, t) for f, t in zip(fields, texts, strict=True) if not t.isascii())
    return invalid(f"{name}: {text} is not a number")


def _macro(word: str) -> str:
    expr = MACROS.get(word.lower())
    if expr is not None:
        return expr
    if word.lower() == "@reboot":
        raise invalid("@reboot is not a schedule (it means 'when cron starts')")
    raise invalid(f"{word} is not a known macro: use one of {', '.join(MACROS)}")


# --------------------------------------------------------------------------- plain fields


def bits(f: Field, text: str, job_id: str) -> int:
    """The mask of values a numeric field allows (names, ranges, steps, lists, H)."""
    if text == "*":
        return f.full
    if text.isdigit():
        return 1 << _number(f, text)
    mask = 0
    for item in _items(f, text):
        # Plain numbers and ranges are most of what people write: skip `_item`.
        lo_text, dash, hi_text = item.partition("-")
        if lo_text.isdigit() and (not dash or hi_text.isdigit()):
            lo = _number(f, lo_text)
            hi = _number(f, hi_text) if dash else lo
            if hi >= lo:
                mask |= (1 << (hi + 1)) - (1 << lo)
                continue
        mask |= range_bits(_item(f, item, job_id))
    return mask


def _items(f: Field, text: str) -> list[str]:
    """The comma-separated items of a field, none of them empty."""
    items = text.split(",")
    if "" in items:
        raise invalid(f"{f.name}: {text} has an empty item (two commas, or one at an end)")
    return items


def _item(f: Field, item: str, job_id: str) -> range:
    """One list item: `*`, `5`, `MON`, `1-5`, any of those with `/step`, or H."""
    base, slash, step_text = item.partition("/")
    step = _step(f, step_text, item) if slash else 1
    if base == "*":
        return range(f.lo, f.hi + 1, step)
    if base[:1] in ("H", "h"):
        return hashed(f, base, step if slash else 0, item, job_id)
    lo_text, dash, hi_text = base.partition("-")
    lo = _value(f, lo_text, item)
    if not dash:
        return range(lo, (f.hi if slash else lo) + 1, step)
    hi = _value(f, hi_text, item)
    if hi < lo:
        raise _backwards(f, lo, hi, lo_text, item)
    return range(lo, hi + 1, step)


def _value(f: Field, token: str, item: str) -> int:
    if token.isdigit():
        return _number(f, token)
    if not token:
        raise invalid(f"{f.name}: {item} is incomplete")
    upper = token.upper()
    if upper in f.names:
        return f.lo + f.names.index(upper)
    raise _not_a_value(f, token)


def _number(f: Field, token: str) -> int:
    value = int(token)
    if not f.lo <= value <= f.hi:
        raise f.out_of_range(token)
    return value


def _step(f: Field, text: str, item: str) -> int:
    if not text.isdigit():
        raise invalid(f"{f.name}: the step in {item} must be a whole number")
    step = int(text)
    if not 1 <= step <= f.hi:
        raise invalid(f"{f.name}: step {text} in {item} is out of range 1-{f.hi}")
    return step


def _not_a_value(f: Field, token: str) -> InvalidSpec:
    if token == "?":
        return invalid(f"{f.name}: ? is not supported; write * for 'any'")
    if f.names:
        kind = "day name (SUN-SAT)" if f is DOW else "month name (JAN-DEC)"
        return invalid(f"{f.name}: {token} is not a number or a {kind}")
    return invalid(f"{f.name}: {token} is not a number")


def _backwards(f: Field, lo: int, hi: int, lo_text: str, item: str) -> InvalidSpec:
    """A range written high to low, with the list it probably means."""
    top = 6 if f is DOW else f.hi
    wrapped = [*range(lo, top + 1), *range(0 if f is DOW else f.lo, hi + 1)]
    if f.names and not lo_text.isdigit():
        hint = ",".join(f.names[v % 7 if f is DOW else v - f.lo] for v in wrapped)
    elif len(wrapped) <= 7:
        hint = ",".join(map(str, wrapped))
    else:
        hint = f"{lo}-{top},{0 if f is DOW else f.lo}-{hi}"
    return invalid(f"{f.name}: range {item} runs backwards; ranges go low to high, write {hint}")


# --------------------------------------------------------------------------- H


def hash_number(job_id: str, f: Field) -> int:
    """A stable number for a job and field: sha256, the same in every process."""
    digest = hashlib.sha256(f"{job_id}:{f.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def hashed(f: Field, base: str, step: int, item: str, job_id: str) -> range:
    """Jenkins' `H`, `H(lo-hi)` and either with `/step` (step 0: no step): a value,
    or a step's starting offset, picked by `hash_number`."""
    lo, hi = _hash_bounds(f, base, item)
    span = hi - lo + 1
    if not step:
        value = lo + hash_number(job_id, f) % span
        return range(value, value + 1)
    return range(lo + hash_number(job_id, f) % min(step, span), hi + 1, step)


def _hash_bounds(f: Field, base: str, item: str) -> tuple[int, int]:
    if len(base) == 1:
        return f.lo, f.hash_hi if f.hash_hi >= 0 else f.hi
    inner = base[1:]
    if not (inner.startswith("(") and inner.endswith(")")):
        raise invalid(f"{f.name}: {item} is not H, H(low-high) or either with /step")
    lo_text, dash, hi_text = inner[1:-1].partition("-")
    if not dash:
        raise invalid(f"{f.name}: {item} needs a range inside the parentheses, like H(0-29)")
    lo, hi = _value(f, lo_text, item), _value(f, hi_text, item)
    if hi < lo:
        raise _backwards(f, lo, hi, lo_text, item)
    return lo, hi


# --------------------------------------------------------------------------- day fields


def days_of_month(text: str, job_id: str) -> DaysOfMonth:
    """The day-of-month field: numbers, ranges, steps, H, L, L-n, LW and nW."""
    upper = text.upper()
    common = _COMMON_DAYS_OF_MONTH.get(upper)
    if common is not None:
        return common
    if "L" not in upper and "W" not in upper:
        return DaysOfMonth(bits(DOM, text, job_id))
    days = 0
    before_last: list[int] = []
    nearest: list[int] = []
    last_weekday = False
    for item in _items(DOM, text):
        upper = item.upper()
        if upper == "LW":
            last_weekday = True
        elif upper[:1] == "L":
            before_last.append(_before_last(upper, item))
        elif upper[-1:] == "W":
            nearest.append(_nearest(upper, item))
        else:
            days |= range_bits(_item(DOM, item, job_id))
    return DaysOfMonth(days, _sorted(before_last), _sorted(nearest), last_weekday)


def _before_last(upper: str, item: str) -> int:
    if upper == "L":
        return 0
    if upper[1:2] != "-" or not upper[2:].isdigit():
        raise invalid(f"day-of-month: {item} is not L (the last day), L-n (n days before it) or LW")
    n = int(upper[2:])
    if not 1 <= n <= 30:
        raise invalid(f"day-of-month: {upper[2:]} in {item} is out of range 1-30")
    return n


def _nearest(upper: str, item: str) -> int:
    day_text = upper[:-1]
    if not day_text.isdigit():
        raise invalid(
            f"day-of-month: {item} is not nW (the weekday nearest day n) or LW (the last weekday)"
        )
    return _number(DOM, day_text)


def days_of_week(text: str, job_id: str) -> DaysOfWeek:
    """The day-of-week field: numbers and names, ranges, steps, H, nL and n#k."""
    if "#" not in text and "L" not in text.upper():
        return _PLAIN_WEEKDAYS[_sunday_once(bits(DOW, text, job_id))]
    days = 0
    nth: list[tuple[int, int]] = []
    for item in _items(DOW, text):
        upper = item.upper()
        if "#" in upper:
            nth.append(_nth(item))
        elif upper[-1:] == "L" and len(upper) > 1:
            nth.append((_value(DOW, item[:-1], item) % 7, -1))
        elif upper == "L":
            raise invalid("day-of-week: L needs a day before it, like 5L (the last Friday)")
        else:
            days |= range_bits(_item(DOW, item, job_id))
    return DaysOfWeek(_sunday_once(days), tuple(sorted(set(nth))))


def _sunday_once(days: int) -> int:
    """Fold day 7 onto day 0: both are Sunday."""
    return (days | 1) & WEEK if days >> 7 else days


def _nth(item: str) -> tuple[int, int]:
    day_text, _, n_text = item.partition("#")
    digits = n_text[1:] if n_text[:1] == "-" else n_text
    if not digits.isdigit():
        raise invalid(f"day-of-week: {item} is not day#n, like 1#2 (the second Monday)")
    n = int(n_text)
    if not (1 <= n <= 5 or -5 <= n <= -1):
        raise invalid(f"day-of-week: {n_text} in {item} is out of range 1-5 (or -1 to -5)")
    return _value(DOW, day_text, item) % 7, n


def _sorted(items: list[int]) -> tuple[int, ...]:
    return tuple(sorted(set(items)))


EVERY_DAY = DaysOfMonth(span_bits(1, 32))
EVERY_WEEKDAY = DaysOfWeek(WEEK)
_COMMON_DAYS_OF_MONTH = {
    "*": EVERY_DAY,
    "L": DaysOfMonth(0, (0,)),
    "LW": DaysOfMonth(0, last_weekday=True),
}
_PLAIN_WEEKDAYS = tuple(DaysOfWeek(days) for days in range(WEEK + 1))  # made once, not per parse
