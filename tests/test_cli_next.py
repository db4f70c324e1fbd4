"""`clocktower next EXPR`: preview fire times in a zone, for people and for machines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clocktower.cli import app
from clocktower.triggers import parse_expression

runner = CliRunner(env={"CLOCKTOWER_TIMEZONE": None})


def next_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = runner.invoke(app, ["next", *args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_json_lists_fire_times_in_utc_and_local_time() -> None:
    data = next_json("daily at 02:30", "--tz", "Europe/Paris", "--from", "2025-03-29", "-n", "3")
    assert data["expression"] == "daily at 02:30"
    assert data["tz"] == "Europe/Paris"
    assert "Europe/Paris" in data["description"]
    assert data["readable"] == "daily at 02:30"
    assert data["fire_times"] == [
        {"utc": "2025-03-29T01:30:00Z", "local": "2025-03-29T02:30:00+01:00"},
        {"utc": "2025-03-30T01:00:00Z", "local": "2025-03-30T03:00:00+02:00"},  # the gap
        {"utc": "2025-03-31T00:30:00Z", "local": "2025-03-31T02:30:00+02:00"},
    ]


def test_cron_expressions_show_their_readable_form() -> None:
    data = next_json("0 6 * * 1", "--from", "2025-01-01T00:00:00Z", "--count", "2")
    assert data["readable"] == "mondays at 06:00"
    assert [t["utc"] for t in data["fire_times"]] == [
        "2025-01-06T06:00:00Z",
        "2025-01-13T06:00:00Z",
    ]


def test_the_zone_comes_from_clocktower_timezone_when_not_given() -> None:
    data = next_json("daily at 09:00", "--from", "2025-01-01T00:00:00Z", "-n", "1",
                     env={"CLOCKTOWER_TIMEZONE": "Asia/Tokyo"})  # fmt: skip
    assert data["tz"] == "Asia/Tokyo"
    # 2025-01-01T00:00Z is 09:00 in Tokyo: the next fire time is strictly after it.
    assert data["fire_times"] == [
        {"utc": "2025-01-02T00:00:00Z", "local": "2025-01-02T09:00:00+09:00"}
    ]


def test_from_without_offset_is_in_the_given_zone() -> None:
    data = next_json("every 7 days at 16:00", "--tz", "Europe/Paris", "--from",
                     "2025-03-27T16:00", "-n", "1")  # fmt: skip
    assert data["fire_times"][0]["local"] == "2025-04-03T16:00:00+02:00"


def test_a_one_off_in_the_past_has_no_fire_times() -> None:
    data = next_json("at 2020-01-01 09:00", "--from", "2025-01-01T00:00:00Z")
    assert data["fire_times"] == []
    table = runner.invoke(app, ["next", "at 2020-01-01 09:00", "--from", "2025-01-01"])
    assert table.exit_code == 0
    assert "No fire times after 2025-01-01T00:00:00Z" in table.stdout


def test_the_table_shows_utc_local_time_offset_and_description() -> None:
    result = runner.invoke(
        app, ["next", "mondays at 06:00", "--tz", "Europe/Paris", "--from", "2025-03-25", "-n", "2"]
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == parse_expression("mondays at 06:00", "Europe/Paris").describe()
    assert "readable: mondays at 06:00" in out
    assert "Local (Europe/Paris)" in out
    assert "2025-03-31T04:00:00Z" in out
    assert "2025-03-31T06:00:00+02:00 CEST" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dialy at 03:00"], "'dialy' is not understood (did you mean 'daily'?)"),
        (["0 25 * * *"], "25"),
        (["daily at 03:00", "--tz", "Europe/Pari"], "--tz: unknown time zone 'Europe/Pari'"),
        (["daily at 03:00", "--from", "yesterday"], "--from:"),
        (["daily at 03:00", "--count", "0"], "--count:"),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_code_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["next", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_help_names_the_environment_variable() -> None:
    result = runner.invoke(app, ["next", "--help"])
    assert result.exit_code == 0
    assert "CLOCKTOWER_TIMEZONE" in result.stdout


def test_the_installed_console_script_runs() -> None:
    script = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "clocktower"
    if not script.exists():
        pytest.skip(f"{script} is not installed (make installs it)")
    completed = subprocess.run(
        [str(script), "next", "weekdays at 9:00", "--tz", "America/New_York",
         "--from", "2025-03-07T00:00:00-05:00", "--count", "2", "--json"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert [t["local"] for t in data["fire_times"]] == [
        "2025-03-07T09:00:00-05:00",
        "2025-03-10T09:00:00-04:00",  # after the US spring change on March 9th
    ]
    bad = subprocess.run([str(script), "next", "dialy"], capture_output=True, text=True,
                         check=False, timeout=60)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ")
