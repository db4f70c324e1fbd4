"""The `clocktower` command.

Each command is a short `@app.command()` function that parses its options,
calls the layer below and renders the result: a Rich table in a terminal,
JSON with `--json`. Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from clocktower.model import ClocktowerError, InvalidSpec
from clocktower.triggers import Trigger, fire_times, parse_expression, readable_form
from clocktower.triggers.localtime import to_instant
from clocktower.triggers.oneoff import parse_instant

EXIT_USAGE = 2

app = typer.Typer(
    name="clocktower",
    help="Clocktower: a self-hosted scheduler for an application's background jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point of the `clocktower` console script."""
    app()


@app.callback()
def _root() -> None:
    """Clocktower: a self-hosted scheduler for an application's background jobs."""


# --------------------------------------------------------------------------- shared helpers


def fail(message: str) -> NoReturn:
    """Print a one-line error to stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


@contextmanager
def cli_errors(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn Clocktower errors into `fail`. `flags` maps an InvalidSpec field to the
    command-line flag that sets it, so the message names what the user typed."""
    try:
        yield
    except InvalidSpec as exc:
        if flags is None:
            fail(str(exc))
        flag = flags.get(exc.field or "")
        fail(f"{flag}: {exc.message}" if flag else exc.message)
    except ClocktowerError as exc:
        fail(str(exc))


def utc_iso(ts: float) -> str:
    """An instant as ISO-8601 UTC with a Z: 2025-03-30T01:00:00Z."""
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat() + "Z"


def local_iso(ts: float, zone: ZoneInfo) -> str:
    """An instant as ISO-8601 local time with its offset: 2025-03-30T03:00:00+02:00."""
    return datetime.fromtimestamp(ts, zone).isoformat()


# --------------------------------------------------------------------------- next

TzOption = Annotated[
    str,
    typer.Option(
        "--tz",
        envvar="CLOCKTOWER_TIMEZONE",
        help="IANA time zone the schedule is evaluated in.",
    ),
]


@app.command("next")
def next_command(
    expr: Annotated[
        str,
        typer.Argument(
            help="A cron expression, an interval ('every 90s', '7 days at 16:00'), "
            "an instant ('2026-12-01 09:00') or a readable schedule ('daily at 03:00').",
            show_default=False,
        ),
    ],
    tz: TzOption = "UTC",
    count: Annotated[int, typer.Option("--count", "-n", help="How many fire times.")] = 5,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Show fire times after this instant (ISO-8601; no offset means --tz). "
            "Default: now.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Preview the next fire times of a schedule, with a readable description."""
    if not 1 <= count <= 10_000:
        fail(f"--count: {count} is out of range: use 1 to 10000")
    with cli_errors({"tz": "--tz"}):
        trigger = parse_expression(expr, tz)
        after = _parse_from(start, trigger.zone) if start is not None else time.time()
    times = list(islice(fire_times(trigger, after), count))
    if as_json:
        typer.echo(json.dumps(_next_json(expr, trigger, times), indent=2))
    else:
        _print_next(trigger, times, after)


def _parse_from(text: str, zone: ZoneInfo) -> float:
    if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text):
        text = text.strip() + " 00:00"  # a date alone means its midnight
    try:
        return to_instant(parse_instant(text), zone)
    except (ValueError, OverflowError) as exc:
        fail(f"--from: {exc}")


def _next_json(expr: str, trigger: Trigger, times: list[float]) -> dict[str, Any]:
    return {
        "expression": expr,
        "tz": trigger.zone.key,
        "description": trigger.describe(),
        "readable": readable_form(trigger),
        "fire_times": [{"utc": utc_iso(ts), "local": local_iso(ts, trigger.zone)} for ts in times],
    }


def _print_next(trigger: Trigger, times: list[float], after: float) -> None:
    console = Console(highlight=False)
    console.print(trigger.describe(), style="bold", markup=False)
    if (text := readable_form(trigger)) is not None:
        console.print(f"readable: {text}", markup=False)
    if not times:
        console.print(f"No fire times after {utc_iso(after)}.", markup=False)
        return
    table = Table("#", "UTC", f"Local ({trigger.zone.key})")
    for number, ts in enumerate(times, start=1):
        local = datetime.fromtimestamp(ts, trigger.zone)
        table.add_row(str(number), utc_iso(ts), f"{local.isoformat()} {local.tzname()}")
    console.print(table)
