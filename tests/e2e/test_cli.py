"""The `clocktower` command as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clocktower.store import Store

from .nodes import cli

pytestmark = pytest.mark.slow


def test_tokens_are_shown_once_listed_and_revoked(store: Store) -> None:
    created = cli("tokens", "create", "--name", "ci-bot", "--scope", "operate", database=store.url)
    secret = created.stdout.strip()
    assert secret.startswith("ct_") and "not shown again" in created.stderr
    listed = json.loads(cli("tokens", "list", "--json", database=store.url).stdout)
    assert listed == [
        {**listed[0], "name": "ci-bot", "scope": "operate", "revoked_at": None},
    ]
    assert secret not in json.dumps(listed)
    cli("tokens", "revoke", "ci-bot", database=store.url)
    again = cli("tokens", "revoke", "ci-bot", database=store.url, check=False)
    assert again.returncode == 2 and "no active token named 'ci-bot'" in again.stderr
    bad = cli("tokens", "create", "--name", "x", "--scope", "root", database=store.url, check=False)
    assert bad.returncode == 2 and "--scope: unknown scope 'root'" in bad.stderr


def test_serve_refuses_a_public_address_without_tokens(store: Store) -> None:
    result = cli("serve", "--bind", "0.0.0.0:8799", database=store.url, check=False)
    assert result.returncode == 2
    assert "no API token exists" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("bind", "problem"),
    [
        ("localhost", "'localhost' is not host:port (like 127.0.0.1:8700 or 0.0.0.0:8700)"),
        # The socket layer would wrap it around and listen on 34463.
        ("127.0.0.1:99999", "port 99999 is not between 1 and 65535"),
    ],
)
def test_serve_refuses_a_bind_flag_as_the_config_refuses_its_bind(
    tmp_path: Path, bind: str, problem: str
) -> None:
    database = f"sqlite:///{tmp_path / 'clocktower.db'}"
    flag = cli("serve", "--bind", bind, database=database, check=False)
    variable = cli("serve", database=database, env={"CLOCKTOWER_BIND": bind}, check=False)

    assert (flag.returncode, flag.stderr) == (2, f"error: --bind: {problem}\n")
    assert variable.stderr == f"error: environment variable CLOCKTOWER_BIND: {problem}\n"


@pytest.mark.parametrize(
    ("database", "problem"),
    [
        ("foo", "error: --database: expected a database URL such as sqlite:///clocktower.db"),
        (
            "postgresql://ops:s3cret@127.0.0.1:1/ct",
            "error: database postgresql://ops:***@127.0.0.1:1/ct: ",
        ),
    ],
)
def test_serve_reports_a_store_it_cannot_open_in_one_line(database: str, problem: str) -> None:
    result = cli("serve", "--no-http", "--database", database, database="", check=False)

    assert result.returncode == 2
    assert result.stderr.startswith(problem)
    assert result.stderr.count("\n") == 1
    assert "s3cret" not in result.stderr


def test_jobs_add_edit_show_and_errors_name_the_field(store: Store) -> None:
    cli(
        "jobs",
        "add",
        "nightly",
        "--command",
        "true",
        "--schedule",
        "daily at 03:00",
        "--tz",
        "Europe/Paris",
        "--set",
        "retries=2",
        database=store.url,
    )
    shown = json.loads(cli("jobs", "show", "nightly", "--json", database=store.url).stdout)
    assert shown["schedule"]["readable"] == "daily at 03:00"
    assert shown["schedule"]["tz"] == "Europe/Paris"
    assert shown["definition"]["retries"] == 2
    assert all(t.endswith(":00:00Z") for t in shown["upcoming"])
    cli("jobs", "edit", "nightly", "--cron", "30 4 * * *", database=store.url)
    shown = json.loads(cli("jobs", "show", "nightly", "--json", database=store.url).stdout)
    assert shown["schedule"]["readable"] == "daily at 04:30"
    bad = cli("jobs", "edit", "nightly", "--set", "timout=5m", database=store.url, check=False)
    assert bad.returncode == 2
    assert "unknown field 'timout'; did you mean 'timeout'?" in bad.stderr
    missing = cli("jobs", "pause", "nope", database=store.url, check=False)
    assert missing.returncode == 2 and "no job 'nope'" in missing.stderr


def test_json_output_has_the_apis_shapes(store: Store) -> None:
    from clocktower.api.schemas import JobOut, RunOut

    cli("jobs", "add", "nightly", "--command", "true", "--cron", "0 3 * * *", database=store.url)
    cli("trigger", "nightly", database=store.url)
    (job,) = json.loads(cli("jobs", "list", "--json", database=store.url).stdout)
    (run,) = json.loads(cli("runs", "nightly", "--json", database=store.url).stdout)
    assert JobOut.model_validate(job).id == "nightly"
    assert RunOut.model_validate(run).job_id == "nightly"
    assert run["scheduled_for"].endswith("Z")
