"""Cron expressions read back in English, with their zone."""

from __future__ import annotations

import pytest

from clocktower.triggers.cron import CronTrigger, describe_cron


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("0 6 * * 1", "At 06:00 on Monday"),
        ("0 3 * * *", "At 03:00"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("* * * * *", "Every minute"),
        ("0,30 * * * *", "Every 30 minutes"),
        ("5,35 * * * *", "At minutes 5 and 35"),
        ("0 9-17 * * 1-5", "Every hour from 09:00 to 17:00 on Monday through Friday"),
        ("0 0 1,15 * *", "At 00:00 on day 1 and 15 of the month"),
        ("0 0 1-10 * *", "At 00:00 on day 1 through 10 of the month"),
        ("15 10 L * *", "At 10:15 on the last day of the month"),
        ("0 */2 * * *", "At minute 0 past every 2nd hour"),
        ("0 8,12,18 * * *", "At 08:00, 12:00 and 18:00"),
        ("30 1,3,5,7,9,11,13 * * *", "At minute 30 past hours 1, 3, 5, 7, 9, 11 and 13"),
        ("*/10 9-17 * * *", "Every 10 minutes during hours 9 through 17"),
        ("45 23 * * 6", "At 23:45 on Saturday"),
        ("0 0 * * 0,6", "At 00:00 on Saturday and Sunday"),
        ("0 12 * * 1-5,0", "At 12:00 on Sunday through Friday"),
        ("0 0 * * 5L", "At 00:00 on the last Friday of the month"),
        ("0 0 * * 1#-2", "At 00:00 on the second-to-last Monday of the month"),
        ("0 0 LW * *", "At 00:00 on the last weekday of the month"),
        ("0 0 15W * *", "At 00:00 on the weekday nearest day 15 of the month"),
        ("0 0 L-3 * *", "At 00:00 on the day 3 days before the last day of the month"),
        (
            "0 0 1 * MON#2",
            "At 00:00 on day 1 of the month or on the second Monday of the month",
        ),
        ("0 0 */2 * 1", "At 00:00 on every 2nd day of the month, if it is Monday"),
        ("0 0 * 1,7 *", "At 00:00 in January and July"),
        ("0 12 1 */3 *", "At 12:00 on day 1 of the month in every 3rd month"),
        ("@yearly", "At 00:00 on January 1"),
        ("0 0 25 12 *", "At 00:00 on December 25"),
        ("@weekly", "At 00:00 on Sunday"),
        ("@hourly", "At minute 0 past every hour"),
        ("*/20 * * * * *", "Every 20 seconds"),
        ("30 0 9 * * *", "At 09:00:30"),
        ("*/5 0 9 * * *", "Every 5 seconds during 09:00"),
        ("10 * * * * *", "At second 10 of every minute"),
    ],
)
def test_describe(expr: str, text: str) -> None:
    assert describe_cron(expr) == f"{text}, UTC"


def test_describe_names_the_zone() -> None:
    assert CronTrigger("0 18 5 * *", "Europe/Paris").describe() == (
        "At 18:00 on day 5 of the month, Europe/Paris"
    )
    assert describe_cron("0 18 5 * *", "Europe/Paris") == (
        "At 18:00 on day 5 of the month, Europe/Paris"
    )
