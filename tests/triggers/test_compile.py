"""The package's public face: compile_trigger, parse_expression, describe, fire_times."""

from __future__ import annotations

from datetime import date, datetime
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from clocktower.model import InvalidSpec, TriggerSpec
from clocktower.triggers import (
    AtTrigger,
    CronTrigger,
    EveryTrigger,
    Trigger,
    compile_trigger,
    describe,
    fire_times,
    parse_expression,
    readable_form,
)

from .timeutil import PARIS, take, ts, wall

JAN_1 = ts("2025-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("kind", "expr", "cls"),
    [
        ("cron", "0 3 * * *", CronTrigger),
        ("every", "90s", EveryTrigger),
        ("every", "7 days at 16:00", EveryTrigger),
        ("at", "2026-12-01T09:00:00+01:00", AtTrigger),
        ("schedule", "daily at 03:00", CronTrigger),
        ("schedule", "every 7 days at 16:00", EveryTrigger),
        ("schedule", "once at 2026-12-01 09:00", AtTrigger),
    ],
)
def test_each_kind_compiles_to_its_trigger(kind: str, expr: str, cls: type) -> None:
    trigger = compile_trigger(TriggerSpec(kind, expr, "Europe/Paris"))  # type: ignore[arg-type]
    assert isinstance(trigger, cls)
    assert isinstance(trigger, Trigger)
    assert trigger.zone == PARIS


@pytest.mark.parametrize(
    ("text", "cls"),
    [
        ("0 3 * * *", CronTrigger),
        ("0 0 3 * * *", CronTrigger),
        ("@daily", CronTrigger),
        ("0 6 * * MON", CronTrigger),
        ("every 90s", EveryTrigger),
        ("90s", EveryTrigger),
        ("1h30m", EveryTrigger),
        ("7 days at 16:00", EveryTrigger),
        ("every 7 days at 16:00", EveryTrigger),
        ("2026-12-01T09:00:00Z", AtTrigger),
        ("2026-12-01 09:00", AtTrigger),
        ("at 2026-12-01 09:00", AtTrigger),
        ("daily at 03:00", CronTrigger),
        ("every 10 minutes", CronTrigger),
        ("monthly on the 5th at 18:00", CronTrigger),
    ],
)
def test_parse_expression_detects_the_kind(text: str, cls: type) -> None:
    assert isinstance(parse_expression(text, "UTC"), cls)


READABLE_AS_CRON = [
    "daily at 03:00",
    "mondays at 06:00",
    "weekdays at 9:00",
    "weekends at 10:00",
    "monthly on the 5th at 18:00",
    "last day of month at 23:00",
    "every 10 minutes",
    "every 2 hours",
    "hourly at :30",
]


@pytest.mark.parametrize("text", READABLE_AS_CRON)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York"])
def test_readable_schedules_fire_like_their_cron_expression(text: str, zone: str) -> None:
    trigger = parse_expression(text, zone)
    assert isinstance(trigger, CronTrigger)
    start = datetime(2025, 1, 1, tzinfo=ZoneInfo(zone))
    expected = [dt.timestamp() for dt in islice(CronSim(trigger.expr, start), 30)]
    assert take(trigger, start.timestamp(), 30) == expected


def test_seed_schedules_in_their_zones() -> None:
    monthly = parse_expression("monthly on the 5th at 18:00", "Europe/Paris")
    assert [wall(f, PARIS) for f in take(monthly, JAN_1, 3)] == [
        "2025-01-05T18:00:00+01:00",
        "2025-02-05T18:00:00+01:00",
        "2025-03-05T18:00:00+01:00",
    ]
    weekly = parse_expression("every monday at 06:00", "UTC")
    assert take(weekly, JAN_1, 1) == [ts("2025-01-06T06:00:00+00:00")]


def test_a_daily_time_in_the_dst_gap_fires_after_the_gap_and_once_in_the_fold() -> None:
    trigger = parse_expression("daily at 02:30", "Europe/Paris")
    spring = take(trigger, ts("2025-03-29T12:00:00+01:00"), 2)
    fall = take(trigger, ts("2025-10-25T12:00:00+02:00"), 2)
    assert [wall(f, PARIS) for f in spring] == [
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]
    assert [wall(f, PARIS) for f in fall] == [
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:30:00+01:00",
    ]


# --------------------------------------------------------------------------- bounds


def test_bounds_and_exclusions_apply_to_any_kind() -> None:
    spec = TriggerSpec(
        "schedule",
        "weekdays at 09:00",
        "Europe/Paris",
        start=datetime(2025, 12, 22),
        end=datetime(2025, 12, 26, 23, 59),
        exclude=(date(2025, 12, 25),),
    )
    trigger = compile_trigger(spec, job_id="payroll")
    fires = take(trigger, JAN_1, 10)
    assert [wall(f, PARIS)[:10] for f in fires] == [
        "2025-12-22",
        "2025-12-23",
        "2025-12-24",
        "2025-12-25",
        "2025-12-26",
    ]
    assert [trigger.skip_reason(f) for f in fires].count("excluded date 2025-12-25") == 1
    assert "except on 2025-12-25" in trigger.describe()


def test_every_start_is_its_anchor() -> None:
    spec = TriggerSpec("every", "1h", "UTC", start=datetime(2025, 6, 1, 9, 20))
    trigger = compile_trigger(spec)
    assert take(trigger, JAN_1, 2) == [
        ts("2025-06-01T09:20:00+00:00"),
        ts("2025-06-01T10:20:00+00:00"),
    ]


def test_a_one_off_past_its_end_has_no_fire_time() -> None:
    spec = TriggerSpec("at", "2026-12-01 09:00", end=datetime(2026, 1, 1))
    assert compile_trigger(spec).next_after(JAN_1) is None


# --------------------------------------------------------------------------- errors


def _error(spec: TriggerSpec) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        compile_trigger(spec, job_id="nightly")
    assert info.value.job == "nightly"
    return info.value


def test_an_unknown_zone_names_tz_and_suggests_close_names() -> None:
    error = _error(TriggerSpec("cron", "0 3 * * *", "Europe/Pari"))
    assert error.field == "tz"
    assert "'Europe/Paris'" in error.message
    assert "'Europe/Paris'" in _error(TriggerSpec("cron", "0 3 * * *", "europe/paris")).message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (TriggerSpec("cron", "0 25 * * *"), "cron"),
        (TriggerSpec("every", "every 10 parsecs"), "every"),
        (TriggerSpec("at", "tomorrow"), "at"),
        (TriggerSpec("schedule", "dialy at 03:00"), "schedule"),
        (TriggerSpec("schedule", ""), "schedule"),
        (
            TriggerSpec("cron", "0 3 * * *", start=datetime(2026, 1, 1), end=datetime(2025, 1, 1)),
            "end",
        ),
        (TriggerSpec("cron", "0 3 * * *", start="2026-01-01"), "start"),  # type: ignore[arg-type]
        (TriggerSpec("cron", "0 3 * * *", exclude=("2025-12-25",)), "exclude"),  # type: ignore[arg-type]
        (TriggerSpec("hourly", "0 * * * *"), "kind"),  # type: ignore[arg-type]
    ],
)
def test_errors_name_their_field(spec: TriggerSpec, field: str) -> None:
    assert _error(spec).field == field


def test_a_readable_schedule_given_as_cron_says_so() -> None:
    error = _error(TriggerSpec("cron", "daily at 03:00"))
    assert error.field == "cron"
    assert "write it as `schedule`" in error.message


# --------------------------------------------------------------------------- describe


def test_describe_and_fire_times_are_exported() -> None:
    trigger = parse_expression("90s", "UTC")
    assert describe(trigger) == "Every 90 seconds, UTC"
    assert list(fire_times(trigger, 0, 270)) == [90, 180, 270]


@pytest.mark.parametrize(
    ("text", "readable"),
    [
        ("0 3 * * *", "daily at 03:00"),
        ("daily at 3pm", "daily at 15:00"),
        ("every 7 days at 16:00", "every 7 days at 16:00"),
        ("2026-12-01 09:00", "at 2026-12-01 09:00"),
        ("0 3 1-7 * *", None),
    ],
)
def test_readable_form_of_a_trigger(text: str, readable: str | None) -> None:
    assert readable_form(parse_expression(text, "Europe/Paris")) == readable


def test_the_host_zone_is_never_used() -> None:
    error = _error(TriggerSpec("cron", "0 3 * * *", "localtime"))
    assert error.field == "tz"
    assert "host's zone" in error.message
