"""What the CLI refuses, and how: one line on stderr naming the option, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from clocktower.cli import app

# The tests say which store and config they use, whatever the shell has set.
runner = CliRunner(
    env={"CLOCKTOWER_DATABASE": None, "CLOCKTOWER_CONFIG": None, "CLOCKTOWER_BIND": None}
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clocktower.db'}"


def ct(*args: str, db: str) -> Result:
    return runner.invoke(app, [*args, "--database", db])


def ct_json(*args: str, db: str) -> Any:
    result = ct(*args, "--json", db=db)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: Result) -> str:
    """The one-line error of a refused command, without its "error: " prefix."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    return result.stderr.removeprefix("error: ").strip()


# --------------------------------------------------------------------------- runs


def test_runs_of_a_job_that_never_existed_is_an_error_as_in_jobs_show(db: str) -> None:
    ct("jobs", "add", "gone", "--command", "true", db=db)
    ct("trigger", "gone", db=db)
    ct("jobs", "rm", "gone", db=db)

    assert refused(ct("runs", "NO-SUCH-JOB", "--json", db=db)) == "no job 'NO-SUCH-JOB'"
    assert refused(ct("jobs", "show", "NO-SUCH-JOB", db=db)) == "no job 'NO-SUCH-JOB'"
    # A deleted job's history is kept, and still listed.
    assert [run["job_id"] for run in ct_json("runs", "gone", db=db)] == ["gone"]


@pytest.mark.parametrize("limit", ["-5", "0"])
def test_runs_limit_must_be_positive(db: str, limit: str) -> None:
    assert refused(ct("runs", "--limit", limit, db=db)) == (
        f"--limit: {limit} is out of range: use 1 or more"
    )


# --------------------------------------------------------------------------- trigger --env


@pytest.mark.parametrize("name", ["CLOCKTOWER_JOB", "", "1BAD"])
def test_trigger_refuses_env_names_a_jobs_env_refuses_with_the_same_message(
    db: str, name: str
) -> None:
    ct("jobs", "add", "j", "--command", "true", db=db)
    env = f'env={{"{name}"="x"}}'
    as_job_env = refused(ct("jobs", "add", "k", "--command", "x", "--set", env, db=db))

    message = refused(ct("trigger", "j", "--env", f"{name}=x", db=db))

    assert message.startswith("--env: ")
    assert as_job_env == f"job 'k', field 'env.{name}': {message.removeprefix('--env: ')}"
    assert ct_json("runs", db=db) == []  # nothing was started


def test_trigger_passes_valid_env_names_to_the_run(db: str) -> None:
    ct("jobs", "add", "j", "--command", "true", db=db)
    run = ct_json("trigger", "j", "--env", "A_1=x", "--env", "_B=", db=db)
    assert run["env_keys"] == ["A_1", "_B"]


# --------------------------------------------------------------------------- the store


@pytest.mark.parametrize(
    "command",
    [["jobs", "list"], ["runs"], ["jobs", "rm", "j"], ["db", "upgrade"], ["tokens", "list"]],
)
def test_a_database_url_that_is_not_one_is_refused_naming_the_option(command: list[str]) -> None:
    assert refused(ct(*command, db="foo")) == (
        "--database: expected a database URL such as sqlite:///clocktower.db or "
        "postgresql://user:password@host/dbname"
    )


@pytest.mark.parametrize("command", [["jobs", "list"], ["runs"], ["db", "upgrade"]])
def test_a_database_that_cannot_be_reached_is_one_line_without_its_password(
    command: list[str],
) -> None:
    message = refused(ct(*command, db="postgresql://ops:s3cret@127.0.0.1:1/ct"))

    assert message.startswith("database postgresql://ops:***@127.0.0.1:1/ct: ")
    assert "Connection refused" in message
    assert "s3cret" not in message


def test_a_driver_that_is_not_installed_is_named() -> None:
    message = refused(ct("runs", db="postgresql+nosuchdriver://ops@127.0.0.1/ct"))
    assert message.startswith("database postgresql+nosuchdriver://ops@127.0.0.1/ct: ")


# --------------------------------------------------------------------------- --help


def test_help_shows_the_server_table_by_name() -> None:
    result = runner.invoke(app, ["runs", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    words = " ".join(result.stdout.replace("│", " ").split())
    assert "clocktower.toml to read [server] settings" in words
    assert "the config's [server] database" in words
