"""Readable schedules: "daily at 03:00", "mondays at 06:00", "every 10 minutes".

`compile_schedule` turns the text into one of the three trigger kinds (a cron
expression, an `every` expression or an `at` instant); `readable` goes back,
giving the canonical readable form of a compiled expression when one exists,
so `readable(compile_schedule("daily at 3pm"))` is "daily at 15:00".

Matching is case-insensitive and ignores extra spaces.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from clocktower.model import InvalidSpec
from clocktower.triggers import timetext
from clocktower.triggers.interval import Calendar, Elapsed, parse_every
from clocktower.triggers.oneoff import parse_instant

Kind = Literal["cron", "every", "at"]

ACCEPTED_FORMS = (
    "every minute, every 10 minutes, every 2 hours, hourly, hourly at :30, "
    "daily at 03:00, daily at 3pm, mondays at 06:00, mondays and thursdays at 06:00, "
    "weekdays at 09:00, weekends at 10:00, monthly on the 5th at 18:00, "
    "last day of month at 23:00, every 7 days at 16:00, every 90s, 1h30m, "
    "at 2026-12-01 09:00"
)

DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DAY_ALIASES = {"tues": 2, "weds": 3, "thur": 4, "thurs": 4}
DAY_NUMBERS: dict[str, int] = {
    **{name: n for n, name in enumerate(DAY_NAMES)},
    **{name + "s": n for n, name in enumerate(DAY_NAMES)},
    **{name[:3]: n for n, name in enumerate(DAY_NAMES)},
    **_DAY_ALIASES,
}
WEEKDAYS = frozenset(range(1, 6))
WEEKEND = frozenset({0, 6})


@dataclass(frozen=True, slots=True)
class Compiled:
    """A readable schedule compiled to a trigger kind and its expression."""

    kind: Kind
    expr: str


# --------------------------------------------------------------------------- text -> trigger

_TIME = r"(?:\s+at\s+(?P<time>.+))?"
_DAY = "|".join(sorted(DAY_NUMBERS, key=len, reverse=True))
_DAY_LIST = rf"(?:{_DAY})(?:\s*(?:,|\band\b|&)\s*(?:{_DAY}))*"
_DOM = r"(?:the\s+)?(?:(?:day\s+)?\d{1,2}(?:st|nd|rd|th)?|last(?:\s+day)?)"
_MINUTE = re.compile(r":?(\d{1,2})(?:\s+(?:minutes?|mins?)\s+past(?:\s+the\s+hour)?)?")

Handler = Callable[[re.Match[str]], Compiled]


def _cron(minute: int | str, hour: int | str, dom: int | str = "*", dow: str = "*") -> Compiled:
    return Compiled("cron", f"{minute} {hour} {dom} * {dow}")


def _clock(match: re.Match[str]) -> time:
    """The time of day in the `time` group; midnight when the text gives none."""
    text = match.groupdict().get("time")
    return time(0, 0) if text is None else timetext.parse_clock(text)


def _at_time(match: re.Match[str], dom: int | str = "*", dow: str = "*") -> Compiled:
    at = _clock(match)
    return _cron(at.minute, at.hour, dom, dow)


def _minute_of_hour(text: str | None) -> int:
    if text is None:
        return 0
    m = _MINUTE.fullmatch(text)
    if m is None or int(m[1]) > 59:
        raise ValueError(f"{text!r} is not a minute of the hour: use :00 to :59, as in 'at :30'")
    return int(m[1])


def _oneoff(match: re.Match[str]) -> Compiled:
    when = parse_instant(match["when"])
    return Compiled("at", format_instant(when))


def format_instant(when: datetime) -> str:
    """An instant in canonical form: "2026-12-01 09:00" (naive) or ISO-8601 with offset."""
    if when.tzinfo is not None:
        return when.isoformat()
    clock = "%H:%M" if when.second == 0 and when.microsecond == 0 else "%H:%M:%S"
    return when.strftime(f"%Y-%m-%d {clock}")


def _hourly(match: re.Match[str]) -> Compiled:
    return _cron(_minute_of_hour(match["minute"]), "*")


def _every_hours(match: re.Match[str]) -> Compiled:
    hours = int(match["n"])
    minute = _minute_of_hour(match["minute"])
    if not 0 < hours < 24 or 24 % hours:
        raise ValueError(
            f"'every {hours} hours' at a minute of the hour needs a number of hours that "
            "divides 24 (1, 2, 3, 4, 6, 8, 12); for an exact interval write "
            f"'every {hours}h' (elapsed time)"
        )
    return _cron(minute, "*" if hours == 1 else f"*/{hours}")


def _days_of_week(match: re.Match[str]) -> Compiled:
    names = re.split(r"\s*(?:,|\band\b|&)\s*", match["days"])
    numbers = sorted({DAY_NUMBERS[name] for name in names})
    return _at_time(match, dow=",".join(str(n) for n in numbers))


def _day_of_month(match: re.Match[str]) -> Compiled:
    text = match["dom"]
    if text is None:
        return _at_time(match, dom=1)
    if "last" in text:
        return _at_time(match, dom="L")
    day = int(re.sub(r"\D", "", text))
    if not 1 <= day <= 31:
        raise ValueError(f"{text!r} is not a day of the month: use 1st to 31st, or 'last day'")
    return _at_time(match, dom=day)


def _every(match: re.Match[str]) -> Compiled:
    interval = parse_every(match["rest"])
    if isinstance(interval, Calendar):
        if interval.days == 1:
            return _cron(interval.at.minute, interval.at.hour)
        return Compiled("every", interval.canonical())
    return _elapsed_or_cron(interval)


def _duration(match: re.Match[str]) -> Compiled:
    """A bare duration ("90s", "2h") is elapsed time, as in an `every` trigger."""
    return Compiled("every", parse_every(match["rest"]).canonical())


def _elapsed_or_cron(interval: Elapsed) -> Compiled:
    """Minutes dividing an hour and hours dividing a day read best as cron."""
    seconds = interval.seconds
    if seconds % 60 == 0 and 60 % (seconds // 60) == 0 and seconds < 3600:
        minutes = seconds // 60
        return _cron("*" if minutes == 1 else f"*/{minutes}", "*")
    if seconds % 3600 == 0 and 24 % (seconds // 3600) == 0 and seconds < 86400:
        hours = seconds // 3600
        return _cron(0, "*" if hours == 1 else f"*/{hours}")
    return Compiled("every", interval.canonical())


def _fixed(expr: str) -> Handler:
    return lambda _match: Compiled("cron", expr)


_RULES: tuple[tuple[re.Pattern[str], Handler], ...] = tuple(
    (re.compile(pattern), handler)
    for pattern, handler in (
        (r"(?:once\s+(?:at\s+|on\s+)?|at\s+|on\s+)?(?P<when>\d{4}-\d{2}-\d{2}.*)", _oneoff),
        (r"every\s+minute", _fixed("* * * * *")),
        (r"(?:hourly|(?:every|each)\s+hour)(?:\s+at\s+(?P<minute>.+))?", _hourly),
        (r"every\s+(?P<n>\d+)\s*(?:hours?|hrs?|h)\s+at\s+(?P<minute>.+)", _every_hours),
        (r"(?:daily|everyday|(?:every|each)\s+day)" + _TIME, _at_time),
        (r"(?:(?:on|every)\s+)?weekdays?" + _TIME, lambda m: _at_time(m, dow="1-5")),
        (r"(?:(?:on|every)\s+)?weekends?" + _TIME, lambda m: _at_time(m, dow="0,6")),
        (r"weekly", _fixed("0 0 * * 0")),
        (rf"(?:weekly\s+on\s+|on\s+|every\s+|each\s+)?(?P<days>{_DAY_LIST})" + _TIME,
         _days_of_week),
        (rf"(?:monthly|(?:every|each)\s+month)(?:\s+on\s+(?P<dom>{_DOM}))?" + _TIME,
         _day_of_month),
        (rf"(?:on\s+)?(?P<dom>{_DOM})\s+of\s+(?:(?:the|every|each)\s+)?month" + _TIME,
         _day_of_month),
        (r"yearly|annually|(?:every|each)\s+year", _fixed("0 0 1 1 *")),
        (r"every\s+(?P<rest>.+)", _every),
        (r"(?P<rest>\d.*)", _duration),
    )
)  # fmt: skip


def normalize(text: str) -> str:
    """Lowercase, single spaces, no trailing full stop."""
    return " ".join(text.lower().split()).rstrip(".").strip()


def compile_schedule(text: str) -> Compiled:
    """Compile a readable schedule; InvalidSpec (field "schedule") names the bad part."""
    s = normalize(text)
    for pattern, handler in _RULES:
        if match := pattern.fullmatch(s):
            try:
                return handler(match)
            except ValueError as exc:
                message = _unknown_word(text, s) or f"{exc}; accepted forms: {ACCEPTED_FORMS}"
                raise InvalidSpec(message, field="schedule") from None
    raise InvalidSpec(_unknown_word(text, s) or _wrong_order(text), field="schedule")


# --------------------------------------------------------------------------- error messages

_VOCABULARY = frozenset(
    {
        "every", "each", "on", "at", "the", "of", "and", "once", "past", "noon", "midnight",
        "midday", "daily", "everyday", "hourly", "weekly", "monthly", "yearly", "annually",
        "day", "days", "week", "weeks", "weekday", "weekdays", "weekend", "weekends",
        "month", "year", "last", "am", "pm", "a.m", "p.m",
        *timetext.UNIT_SECONDS, *DAY_NUMBERS,
    }
)  # fmt: skip
_NUMERIC = re.compile(r"[\d:.,&+\-tz]+|\d+(?:st|nd|rd|th|[smhdw]|am|pm)|:\d+")


def _unknown_word(text: str, s: str) -> str | None:
    """A message naming the first word of `s` that no schedule form uses, if any."""
    for word in s.replace(",", " , ").split():
        if word in _VOCABULARY or word == "," or _NUMERIC.fullmatch(word):
            continue
        hint = difflib.get_close_matches(word, sorted(_VOCABULARY), n=1, cutoff=0.7)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        return (
            f"cannot read {text.strip()!r} as a schedule: {word!r} is not understood"
            f"{did_you_mean}; accepted forms: {ACCEPTED_FORMS}, or a cron expression "
            "such as '0 3 * * *'"
        )
    return None


def _wrong_order(text: str) -> str:
    if normalize(text).endswith(" at"):
        return f"cannot read {text.strip()!r} as a schedule: a time of day is missing after 'at'"
    return (
        f"cannot read {text.strip()!r} as a schedule: the words are known but not in this "
        f"order; accepted forms: {ACCEPTED_FORMS}, or a cron expression such as '0 3 * * *'"
    )


# --------------------------------------------------------------------------- trigger -> text


def readable(expr: str, kind: Kind = "cron") -> str | None:
    """The canonical readable form of a compiled expression, or None when there is none.

    `readable("0 3 * * *")` is "daily at 03:00"; `readable("7 days at 16:00", "every")`
    is "every 7 days at 16:00".
    """
    try:
        if kind == "every":
            return _readable_every(expr)
        if kind == "at":
            return "at " + format_instant(parse_instant(expr))
        return _readable_cron(expr)
    except ValueError:
        return None


def _readable_every(expr: str) -> str:
    interval = parse_every(expr)
    if isinstance(interval, Elapsed):
        return "every " + timetext.format_duration(interval.seconds)
    if interval.days == 1:
        return f"every day at {timetext.format_clock(interval.at)}"
    return "every " + interval.canonical()


_MACROS = {
    "@hourly": "hourly",
    "@daily": "daily at 00:00",
    "@midnight": "daily at 00:00",
    "@weekly": "sundays at 00:00",
    "@monthly": "monthly on the 1st at 00:00",
    "@yearly": "yearly",
    "@annually": "yearly",
}


def _readable_cron(expr: str) -> str | None:
    fields = expr.strip().upper().split()
    if len(fields) == 1:
        return _MACROS.get(fields[0].lower())
    if len(fields) == 6:
        if fields[0] not in ("0", "00"):
            return None
        fields = fields[1:]
    if len(fields) != 5:
        return None
    minute, hour, dom, month, dow = fields
    if fields == ["0", "0", "1", "1", "*"] or fields == ["0", "0", "1", "JAN", "*"]:
        return "yearly"
    if month != "*":
        return None
    if dom == "*" and dow == "*" and (text := _readable_sub_daily(minute, hour)):
        return text
    if not (minute.isdigit() and hour.isdigit() and int(minute) < 60 and int(hour) < 24):
        return None
    return _readable_days(dom, dow, f"{int(hour):02d}:{int(minute):02d}")


def _readable_sub_daily(minute: str, hour: str) -> str | None:
    """every minute / every N minutes / hourly [at :MM] / every N hours [at :MM]."""
    if hour == "*" and minute == "*":
        return "every minute"
    if hour == "*" and (n := _step(minute)) and 60 % n == 0:
        return f"every {n} minutes"
    if not (minute.isdigit() and int(minute) < 60):
        return None
    at = f" at :{int(minute):02d}" if int(minute) else ""
    if hour == "*":
        return "hourly" + at
    if (n := _step(hour)) and 24 % n == 0:
        return f"every {n} hours{at}"
    return None


def _step(field: str) -> int | None:
    m = re.fullmatch(r"(?:\*|0)/(\d+)", field)
    return int(m[1]) if m and int(m[1]) > 1 else None


def _readable_days(dom: str, dow: str, at: str) -> str | None:
    if dom == "*":
        days = _parse_dow(dow)
        return None if days is None else f"{_describe_days(days)} at {at}"
    if dow != "*":
        return None
    if dom == "L":
        return f"last day of month at {at}"
    if dom.isdigit() and 1 <= int(dom) <= 31:
        return f"monthly on the {ordinal(int(dom))} at {at}"
    return None


def _describe_days(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "daily"
    if days == WEEKDAYS:
        return "weekdays"
    if days == WEEKEND:
        return "weekends"
    names = [DAY_NAMES[d] + "s" for d in sorted(days, key=lambda d: (d + 6) % 7)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _parse_dow(field: str) -> frozenset[int] | None:
    """The days of a simple day-of-week field (numbers, names, ranges), or None."""
    if field == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in field.split(","):
        low, _, high = part.partition("-")
        first, last = _dow_number(low), _dow_number(high or low)
        if first is None or last is None or first > last:
            return None
        days.update(d % 7 for d in range(first, last + 1))
    return frozenset(days)


def _dow_number(text: str) -> int | None:
    if text.isdigit():
        return int(text) if int(text) <= 7 else None
    return DAY_NUMBERS.get(text.lower()) if len(text) == 3 else None


def ordinal(n: int) -> str:
    """1 -> "1st", 22 -> "22nd", 13 -> "13th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
