"""Cron expressions in English: "At 06:00 on Monday", "Every 15 minutes".

Works on parsed fields, so `H` shows the time it picked for the job.
"""

from __future__ import annotations

from collections.abc import Callable

from clocktower.triggers.cronparse import CronFields, DaysOfMonth, DaysOfWeek

WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_NTH = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
_NTH_LAST = {-1: "last", -2: "second-to-last", -3: "third-to-last"}


def describe_fields(fields: CronFields) -> str:
    """The whole schedule, without the zone."""
    parts = [time_phrase(fields)]
    date = _calendar_date(fields)
    if date:
        return f"{parts[0]} on {date}"
    days = day_phrase(fields)
    if days:
        parts.append(days)
    if len(fields.months) < 12:
        parts.append("in " + listing(fields.months, 1, 12, "month", _month, min_step_values=3))
    return " ".join(parts)


def _calendar_date(fields: CronFields) -> str:
    """ "January 1" when the expression names one day of one month, else ""."""
    dom = fields.dom
    plain = not (dom.before_last or dom.nearest_weekday or dom.last_weekday)
    if fields.texts[5] != "*" or not plain or len(fields.months) != 1:
        return ""
    days = [d for d in range(1, 32) if dom.days >> d & 1]
    return f"{_month(fields.months[0])} {days[0]}" if len(days) == 1 else ""


# --------------------------------------------------------------------------- words


def ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def join(words: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _month(value: int) -> str:
    return MONTHS[value - 1]


def step_of(values: tuple[int, ...], lo: int, hi: int, min_values: int = 2) -> int:
    """k when `values` is every kth value from `lo` to the end of the range, else 0."""
    if len(values) < min_values or values[0] != lo:
        return 0
    step = values[1] - values[0]
    expected = tuple(range(lo, hi + 1, step))
    return step if step > 1 and values == expected else 0


def runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    """Consecutive runs: (1, 2, 3, 7) -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for value in values:
        if out and out[-1][1] == value - 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


def listing(
    values: tuple[int, ...],
    lo: int,
    hi: int,
    unit: str,
    name: Callable[[int], str] = str,
    min_step_values: int = 2,
) -> str:
    """Values as words: "Monday through Friday", "every 3rd month", "1, 15 and 20"."""
    step = step_of(values, lo, hi, min_step_values)
    if step:
        return f"every {ordinal(step)} {unit}"
    words = []
    for first, last in runs(values):
        if last - first >= 2:
            words.append(f"{name(first)} through {name(last)}")
        else:
            words.extend(name(v) for v in range(first, last + 1))
    return join(words)


def clock(hour: int, minute: int, second: int = 0) -> str:
    return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second else "")


# --------------------------------------------------------------------------- time of day


def time_phrase(fields: CronFields) -> str:
    """ "At 06:00", "Every 15 minutes", "Every 10 seconds during 09:00"."""
    seconds, minutes, hours = fields.seconds, fields.minutes, fields.hours
    if len(minutes) == 1 and len(seconds) == 1:
        return _at_minute(minutes[0], hours, seconds[0])
    clock_part = _minutes_phrase(minutes, hours)
    if seconds == (0,):
        return clock_part[0].upper() + clock_part[1:]
    if len(seconds) == 1:
        return f"At second {seconds[0]} of {clock_part}"
    return _seconds_phrase(seconds, minutes, hours, clock_part)


def _seconds_phrase(
    seconds: tuple[int, ...], minutes: tuple[int, ...], hours: tuple[int, ...], clock_part: str
) -> str:
    if len(seconds) == 60:
        second_part = "Every second"
    elif step := step_of(seconds, 0, 59):
        second_part = f"Every {step} seconds"
    else:
        second_part = f"At seconds {listing(seconds, 0, 59, 'second')}"
    if len(minutes) == 60:
        return second_part if len(hours) == 24 else f"{second_part} during {_hours(hours)}"
    if len(minutes) == 1 and len(hours) <= 6:
        return f"{second_part} during " + join([clock(hour, minutes[0]) for hour in hours])
    return f"{second_part}, {clock_part}"


def _minutes_phrase(minutes: tuple[int, ...], hours: tuple[int, ...]) -> str:
    """ "every 15 minutes", "every minute past hours 9 through 17"."""
    if len(minutes) == 1:
        return _at_minute(minutes[0], hours, 0).lower()
    if len(minutes) == 60:
        minute_part = "every minute"
    elif step := step_of(minutes, 0, 59):
        minute_part = f"every {step} minutes"
    else:
        minute_part = f"at minutes {listing(minutes, 0, 59, 'minute')}"
    if len(hours) == 24:
        return minute_part
    return f"{minute_part} during {_hours(hours)}"


def _hours(hours: tuple[int, ...]) -> str:
    step = step_of(hours, 0, 23, min_values=3)
    if step:
        return f"every {ordinal(step)} hour"
    return f"hour{'s' if len(hours) > 1 else ''} {listing(hours, 0, 23, 'hour')}"


def _at_minute(minute: int, hours: tuple[int, ...], second: int) -> str:
    """A single minute (and second) of some hours."""
    if len(hours) <= 6:
        return "At " + join([clock(hour, minute, second) for hour in hours])
    where = f"minute {minute}" + (f" and {second} seconds" if second else "")
    if len(hours) == 24:
        return f"At {where} past every hour"
    if len(runs(hours)) == 1:
        first, last = clock(hours[0], minute, second), clock(hours[-1], minute, second)
        return f"Every hour from {first} to {last}"
    return f"At {where} past {_hours(hours)}"


# --------------------------------------------------------------------------- days


def day_phrase(fields: CronFields) -> str:
    """ "on Monday", "on the last day of the month or on Friday", or ""."""
    dom_text, dow_text = fields.texts[3], fields.texts[5]
    by_dom = _dom_phrase(fields.dom) if dom_text != "*" else ""
    by_dow = _dow_phrase(fields.dow) if dow_text != "*" else ""
    if by_dom and by_dow:
        if fields.day_or:
            return f"{by_dom} or {by_dow}"
        return f"{by_dom}, if it is {by_dow.removeprefix('on ')}"
    return by_dom or by_dow


def _dom_phrase(dom: DaysOfMonth) -> str:
    words = []
    if dom.days:
        days = tuple(d for d in range(1, 32) if dom.days >> d & 1)
        if len(days) == 31:
            return ""
        listed = listing(days, 1, 31, "day", min_step_values=3)
        words.append(f"{listed if listed.startswith('every') else 'day ' + listed} of the month")
    for n in dom.before_last:
        words.append(
            "the last day of the month"
            if n == 0
            else "the second-to-last day of the month"
            if n == 1
            else f"the day {n} days before the last day of the month"
        )
    words.extend(f"the weekday nearest day {day} of the month" for day in dom.nearest_weekday)
    if dom.last_weekday:
        words.append("the last weekday of the month")
    return "on " + join(words) if words else ""


def _dow_phrase(dow: DaysOfWeek) -> str:
    words = []
    days = tuple(d for d in range(7) if dow.days >> d & 1)
    if len(days) == 7:
        return ""
    if days == (0, 6):
        words.append("Saturday and Sunday")
    elif days:
        words.append(join(_weekday_runs(days)))
    for weekday, n in dow.nth:
        which = _NTH.get(n) or _NTH_LAST.get(n) or f"{ordinal(-n)}-to-last"
        words.append(f"the {which} {WEEKDAYS[weekday]} of the month")
    return "on " + join(words)


def _weekday_runs(days: tuple[int, ...]) -> list[str]:
    words = []
    for first, last in runs(days):
        if last - first >= 2:
            words.append(f"{WEEKDAYS[first]} through {WEEKDAYS[last]}")
        else:
            words.extend(WEEKDAYS[d] for d in range(first, last + 1))
    return words
