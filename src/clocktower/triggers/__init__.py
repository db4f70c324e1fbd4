"""Pure schedule math: parse, next fire time, describe. No I/O, no clock.

    >>> trigger = parse_expression("mondays at 06:00", "Europe/Paris")
    >>> trigger.describe()
    'At 06:00 on Monday, Europe/Paris'

Kinds: `CronTrigger` (cron expressions), `EveryTrigger` (elapsed or calendar
intervals), `AtTrigger` (one instant), readable schedules compiled to one of
them, and `BoundedTrigger` (start/end bounds and excluded dates around any).
"""

from __future__ import annotations

from clocktower.triggers.base import Trigger, fire_times
from clocktower.triggers.bounded import BoundedTrigger
from clocktower.triggers.build import (
    compile_trigger,
    describe,
    detect_kind,
    parse_expression,
    readable_form,
)
from clocktower.triggers.cron import CronTrigger
from clocktower.triggers.interval import EveryTrigger
from clocktower.triggers.localtime import load_zone
from clocktower.triggers.oneoff import AtTrigger
from clocktower.triggers.readable import Compiled, compile_schedule, readable

__all__ = [
    "AtTrigger",
    "BoundedTrigger",
    "Compiled",
    "CronTrigger",
    "EveryTrigger",
    "Trigger",
    "compile_schedule",
    "compile_trigger",
    "describe",
    "detect_kind",
    "fire_times",
    "load_zone",
    "parse_expression",
    "readable",
    "readable_form",
]
