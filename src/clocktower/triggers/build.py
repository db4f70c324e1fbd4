"""From what the user wrote to a `Trigger`: `compile_trigger` and `parse_expression`.

Every error is an `InvalidSpec` naming the field that is wrong: the trigger
kind ("cron", "every", "at", "schedule"), "tz", "start", "end" or "exclude".
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from clocktower.model import InvalidSpec, TriggerSpec
from clocktower.triggers.base import Trigger
from clocktower.triggers.bounded import BoundedTrigger
from clocktower.triggers.cron import CronTrigger
from clocktower.triggers.interval import EveryTrigger, parse_every
from clocktower.triggers.localtime import format_local, load_zone, to_instant
from clocktower.triggers.oneoff import AtTrigger
from clocktower.triggers.readable import compile_schedule, readable

Kind = Literal["cron", "every", "at", "schedule"]
KINDS: tuple[Kind, ...] = ("cron", "every", "at", "schedule")

_NAMES = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT"
_CRON_TOKEN = re.compile(rf"(?:[0-9*?/,#LWH()\-]|{_NAMES})+", re.IGNORECASE)
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d.*)?", re.IGNORECASE)


def compile_trigger(spec: TriggerSpec, *, job_id: str = "") -> Trigger:
    """The trigger a spec describes, with its bounds and exclusions."""
    zone = load_zone(spec.tz, job_id=job_id)
    start = _bound(spec.start, zone, "start", job_id)
    end = _bound(spec.end, zone, "end", job_id)
    if start is not None and end is not None and end < start:
        raise InvalidSpec(
            f"end {format_local(end, zone)} is before start {format_local(start, zone)}",
            field="end",
            job=job_id or None,
        )
    exclude = _exclusions(spec.exclude, job_id)
    inner = _build(spec.kind, spec.expr, zone, start, job_id)
    if isinstance(inner, EveryTrigger):
        start = None  # an `every` trigger starts at its anchor by itself, and says so
    if start is None and end is None and not exclude:
        return inner
    return BoundedTrigger(inner, start, end, exclude)


def parse_expression(text: str, tz: str = "UTC", *, job_id: str = "") -> Trigger:
    """A trigger from one expression, its kind detected: cron fields or a macro,
    an ISO-8601 instant, a duration ("90s", "7 days at 16:00"), or a readable
    schedule ("daily at 03:00", "every 10 minutes", "once at 2026-12-01 09:00")."""
    return compile_trigger(TriggerSpec(detect_kind(text), text, tz), job_id=job_id)


def detect_kind(text: str) -> Kind:
    """Which trigger kind an expression is written in."""
    s = text.strip()
    tokens = s.split()
    if s.startswith("@") or (len(tokens) >= 3 and all(_CRON_TOKEN.fullmatch(t) for t in tokens)):
        return "cron"
    if _INSTANT.fullmatch(s):
        return "at"
    try:
        parse_every(s)
    except ValueError:
        return "schedule"
    return "every" if s[:1].isdigit() else "schedule"


def _build(kind: str, expr: str, zone: ZoneInfo, start: float | None, job_id: str) -> Trigger:
    job = job_id or None
    if not expr.strip():
        raise InvalidSpec(f"the {kind} expression is empty", field=kind, job=job)
    if kind == "cron":
        return _cron(expr, zone, job_id)
    if kind == "every":
        return EveryTrigger(expr, zone, start=start, job_id=job_id)
    if kind == "at":
        return AtTrigger(expr, zone, job_id=job_id)
    if kind == "schedule":
        return _schedule(expr, zone, start, job_id)
    raise InvalidSpec(
        f"unknown trigger kind {kind!r}: use one of {', '.join(KINDS)}", field="kind", job=job
    )


def _cron(expr: str, zone: ZoneInfo, job_id: str) -> Trigger:
    try:
        return CronTrigger(expr, zone, job_id=job_id)
    except InvalidSpec as exc:
        hint = ""
        if _reads_as_schedule(expr):
            hint = f" ({expr.strip()!r} reads as a schedule: write it as `schedule`, not `cron`)"
        raise InvalidSpec(exc.message + hint, field="cron", job=job_id or None) from None


def _reads_as_schedule(expr: str) -> bool:
    try:
        compile_schedule(expr)
    except InvalidSpec:
        return False
    return True


def _schedule(expr: str, zone: ZoneInfo, start: float | None, job_id: str) -> Trigger:
    try:
        compiled = compile_schedule(expr)
        return _build(compiled.kind, compiled.expr, zone, start, job_id)
    except InvalidSpec as exc:
        raise InvalidSpec(exc.message, field="schedule", job=job_id or None) from None


def _bound(value: datetime | None, zone: ZoneInfo, field: str, job_id: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidSpec(
            f"{value!r} is not a date and time (ISO-8601, such as 2026-01-01T00:00:00+01:00)",
            field=field,
            job=job_id or None,
        )
    return to_instant(value, zone)


def _exclusions(values: tuple[date, ...], job_id: str) -> tuple[date, ...]:
    days = []
    for value in values:
        if isinstance(value, datetime):
            days.append(value.date())
        elif isinstance(value, date):
            days.append(value)
        else:
            raise InvalidSpec(
                f"{value!r} is not a date (YYYY-MM-DD)", field="exclude", job=job_id or None
            )
    return tuple(days)


def describe(trigger: Trigger) -> str:
    """The schedule in English, with its zone."""
    return trigger.describe()


def readable_form(trigger: Trigger) -> str | None:
    """The readable schedule a trigger can be written as ("daily at 03:00"), if any."""
    if isinstance(trigger, BoundedTrigger):
        return readable_form(trigger.inner)
    if isinstance(trigger, EveryTrigger):
        return readable(trigger.canonical, "every")
    if isinstance(trigger, AtTrigger):
        return readable(trigger.expr, "at")
    if isinstance(trigger, CronTrigger):
        return readable(trigger.expr)
    return None
