"""Readable schedules: what people type, compiled to cron / every / at, and back."""

from __future__ import annotations

import pytest

from clocktower.model import InvalidSpec
from clocktower.triggers.readable import Compiled, compile_schedule, readable

COMPILED = [
    ("every minute", "cron", "* * * * *"),
    ("every 10 minutes", "cron", "*/10 * * * *"),
    ("every 2 hours", "cron", "0 */2 * * *"),
    ("every 2 hours at :15", "cron", "15 */2 * * *"),
    ("hourly", "cron", "0 * * * *"),
    ("every hour", "cron", "0 * * * *"),
    ("hourly at :30", "cron", "30 * * * *"),
    ("hourly at 30 minutes past the hour", "cron", "30 * * * *"),
    ("daily at 03:00", "cron", "0 3 * * *"),
    ("daily at 3pm", "cron", "0 15 * * *"),
    ("daily at noon", "cron", "0 12 * * *"),
    ("daily at 12am", "cron", "0 0 * * *"),
    ("every day at 03:00", "cron", "0 3 * * *"),
    ("mondays at 06:00", "cron", "0 6 * * 1"),
    ("every monday at 06:00", "cron", "0 6 * * 1"),
    ("weekly on sunday at 05:00", "cron", "0 5 * * 0"),
    ("mondays and thursdays at 6am", "cron", "0 6 * * 1,4"),
    ("on mon, wed and fri at 9:30", "cron", "30 9 * * 1,3,5"),
    ("weekdays at 9:00", "cron", "0 9 * * 1-5"),
    ("weekends at 10:00", "cron", "0 10 * * 0,6"),
    ("sundays at 05:00", "cron", "0 5 * * 0"),
    ("monthly on the 5th at 18:00", "cron", "0 18 5 * *"),
    ("the 1st of every month at 9:00", "cron", "0 9 1 * *"),
    ("last day of month at 23:00", "cron", "0 23 L * *"),
    ("on the last day of the month at 23:00", "cron", "0 23 L * *"),
    ("monthly on the last day at 23:00", "cron", "0 23 L * *"),
    ("yearly", "cron", "0 0 1 1 *"),
    ("every 7 days at 16:00", "every", "7 days at 16:00"),
    ("every 2 days at 09:30", "every", "2 days at 09:30"),
    ("every 2 weeks at 09:00", "every", "14 days at 09:00"),
    ("every 90s", "every", "90s"),
    ("every 7 minutes", "every", "7m"),
    ("every 30 seconds", "every", "30s"),
    ("1h30m", "every", "90m"),
    ("7d", "every", "7d"),
    ("at 2026-12-01 09:00", "at", "2026-12-01 09:00"),
    ("once at 2026-12-01 09:00", "at", "2026-12-01 09:00"),
    ("once at 2026-12-01T08:00:00Z", "at", "2026-12-01T08:00:00+00:00"),
]


@pytest.mark.parametrize(("text", "kind", "expr"), COMPILED)
def test_readable_forms_compile_to_a_trigger_kind(text: str, kind: str, expr: str) -> None:
    assert compile_schedule(text) == Compiled(kind, expr)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["  DAILY   at 03:00 ", "Daily At 3PM", "Every Monday at 06:00.", "WEEKDAYS AT 9:00"],
)
def test_matching_ignores_case_and_extra_spaces(text: str) -> None:
    assert compile_schedule(text).kind == "cron"


CANONICAL = [
    "every minute",
    "every 10 minutes",
    "every 2 hours",
    "every 2 hours at :15",
    "hourly",
    "hourly at :30",
    "daily at 03:00",
    "mondays at 06:00",
    "mondays and thursdays at 06:00",
    "mondays, wednesdays and fridays at 09:30",
    "weekdays at 09:00",
    "weekends at 10:00",
    "sundays at 05:00",
    "monthly on the 5th at 18:00",
    "monthly on the 22nd at 18:00",
    "last day of month at 23:00",
    "yearly",
    "every 7 days at 16:00",
    "every 90 seconds",
    "every 90 minutes",
    "at 2026-12-01 09:00",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_forms_round_trip(text: str) -> None:
    compiled = compile_schedule(text)
    assert readable(compiled.expr, compiled.kind) == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("daily at 3pm", "daily at 15:00"),
        ("every day at 3:00", "daily at 03:00"),
        ("every monday at 6am", "mondays at 06:00"),
        ("every 60 minutes", "hourly"),
        ("weekly", "sundays at 00:00"),
        ("monthly", "monthly on the 1st at 00:00"),
        ("every 90s", "every 90 seconds"),
        ("once at 2026-12-01 09:00", "at 2026-12-01 09:00"),
    ],
)
def test_other_spellings_come_back_in_canonical_form(text: str, canonical: str) -> None:
    compiled = compile_schedule(text)
    assert readable(compiled.expr, compiled.kind) == canonical


@pytest.mark.parametrize(
    ("cron", "text"),
    [
        ("0 3 * * *", "daily at 03:00"),
        ("0 0 3 * * *", "daily at 03:00"),
        ("@daily", "daily at 00:00"),
        ("@hourly", "hourly"),
        ("0 6 * * MON", "mondays at 06:00"),
        ("0 6 * * 7", "sundays at 06:00"),
        ("0 9 * * MON-FRI", "weekdays at 09:00"),
        ("0 10 * * SAT,SUN", "weekends at 10:00"),
        ("0 10 * * 6,0", "weekends at 10:00"),
        ("0 9 * * 0-6", "daily at 09:00"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 */6 * * *", "every 6 hours"),
        ("0 18 5 * *", "monthly on the 5th at 18:00"),
    ],
)
def test_cron_expressions_read_back_when_a_readable_form_exists(cron: str, text: str) -> None:
    assert readable(cron) == text


@pytest.mark.parametrize(
    "cron",
    [
        "*/7 * * * *",  # not every 7 minutes: :56 is followed by :00
        "0 9-17 * * *",
        "0 3 1-7 * *",
        "0 3 * * 1#2",
        "0 3 15W * *",
        "0 3 1 6 *",
        "0 3 5 * 1",
        "30 0 3 * * *",
        "@reboot",
        "not cron",
    ],
)
def test_cron_expressions_without_a_readable_form_give_none(cron: str) -> None:
    assert readable(cron) is None


def test_an_unknown_word_is_named_with_a_suggestion_and_the_accepted_forms() -> None:
    with pytest.raises(InvalidSpec) as info:
        compile_schedule("dialy at 03:00")
    error = info.value
    assert error.field == "schedule"
    assert "'dialy' is not understood (did you mean 'daily'?)" in error.message
    assert "daily at 03:00" in error.message
    assert "monthly on the 5th at 18:00" in error.message


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("daily at 25:00", "'25:00' is not a time of day"),
        ("mondays at 9 oclock", "'oclock' is not understood"),
        ("monthly on the 32nd at 10:00", "'the 32nd' is not a day of the month"),
        ("every 5 hours at :10", "divides 24"),
        ("every 24 hours at :10", "divides 24"),
        ("hourly at :75", "':75' is not a minute of the hour"),
        ("fortnightly", "'fortnightly' is not understood"),
        ("mondays at", "a time of day is missing after 'at'"),
        ("at 2026-12-01", "no time of day"),
    ],
)
def test_errors_name_the_bad_part(text: str, names: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        compile_schedule(text)
    assert names in info.value.message
