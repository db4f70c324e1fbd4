"""Job definitions from plain mappings and back: what is accepted, and what a user reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from clocktower.model import (
    SPEC_VERSION,
    CatchUp,
    CommandTarget,
    HttpTarget,
    InvalidSpec,
    JobSpec,
    Overlap,
    Policies,
    PythonTarget,
    TriggerSpec,
    WorkflowStep,
    WorkflowTarget,
)
from clocktower.spec import (
    job_from_mapping,
    parse_job,
    policies_from_mapping,
)
from clocktower.spec_targets import RESERVED_ENV


def parse(data: dict[str, Any], **kwargs: Any) -> JobSpec:
    return job_from_mapping(data, job_id=kwargs.pop("job_id", "cleanup"), **kwargs)


def error(data: Any, **kwargs: Any) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        job_from_mapping(data, job_id=kwargs.pop("job_id", "cleanup"), **kwargs)
    return info.value


# --------------------------------------------------------------------------- targets


def test_command_job_with_heroku_style_settings() -> None:
    spec = parse(
        {
            "command": "python manage.py cleanup_deleted_prompts",
            "cron": "0 3 * * *",
            "timeout": "15m",
            "env": {"DATABASE_URL": "${DATABASE_URL}"},
            "cwd": "/srv/app",
            "memory_limit": "512MB",
        }
    )
    assert spec.target == CommandTarget(
        command="python manage.py cleanup_deleted_prompts",
        cwd="/srv/app",
        env={"DATABASE_URL": "${DATABASE_URL}"},
        memory_limit=512_000_000,
    )
    assert spec.trigger == TriggerSpec(kind="cron", expr="0 3 * * *", tz="UTC")
    assert spec.policies == Policies(timeout=900.0)
    assert spec.env == {}
    assert spec.source == "api"


def test_http_job() -> None:
    spec = parse(
        {
            "url": "https://app.example.com/api/cron/cleanup",
            "method": "post",
            "headers": {"Authorization": "Bearer ${CRON_SECRET}"},
            "json": {"dry_run": False, "limit": [1, 2]},
            "expect_status": [200, 202],
            "success_field": "success",
        }
    )
    assert spec.target == HttpTarget(
        url="https://app.example.com/api/cron/cleanup",
        method="POST",
        headers={"Authorization": "Bearer ${CRON_SECRET}"},
        json={"dry_run": False, "limit": [1, 2]},
        expect_status=(200, 202),
        success_field="success",
    )
    assert spec.trigger is None


def test_http_single_status_and_url_from_environment() -> None:
    spec = parse({"url": "${APP_URL}/api/cron", "expect_status": 204, "body": ""})
    assert spec.target == HttpTarget(url="${APP_URL}/api/cron", expect_status=(204,), body="")


def test_python_job_is_not_imported() -> None:
    spec = parse(
        {
            "call": "no_such_package.batch:process_month",
            "args": [5, "fr"],
            "kwargs": {"batch_size": 500},
            "isolation": "process",
            "memory_limit": "512MiB",
        }
    )
    assert spec.target == PythonTarget(
        call="no_such_package.batch:process_month",
        args=(5, "fr"),
        kwargs={"batch_size": 500},
        isolation="process",
        memory_limit=512 << 20,
    )


def test_workflow_with_job_steps_and_inline_steps() -> None:
    spec = parse(
        {
            "steps": [
                {"job": "purge-sessions"},
                {"name": "ping", "url": "https://example.com/ping", "timeout": "30s"},
                {"name": "report", "command": "node scripts/weekly-summary.js", "env": {"A": "1"}},
                {"name": "py", "call": "app.tasks:run"},
            ],
            "parallel": True,
            "max_parallel": 2,
            "continue_on_failure": True,
            "env": {"REGION": "eu"},
        },
        job_id="nightly",
    )
    assert spec.target == WorkflowTarget(
        steps=(
            WorkflowStep(name="purge-sessions", job="purge-sessions"),
            WorkflowStep(
                name="ping", target=HttpTarget(url="https://example.com/ping"), timeout=30.0
            ),
            WorkflowStep(
                name="report",
                target=CommandTarget(command="node scripts/weekly-summary.js", env={"A": "1"}),
            ),
            WorkflowStep(name="py", target=PythonTarget(call="app.tasks:run")),
        ),
        parallel=True,
        max_parallel=2,
        continue_on_failure=True,
    )
    assert spec.env == {"REGION": "eu"}  # job-wide for a workflow


def test_common_fields() -> None:
    spec = parse(
        {
            "command": "true",
            "description": "Purge soft-deleted prompts",
            "tags": ["maintenance", "db"],
            "after": ["backup", "vacuum"],
        },
        source="cli",
    )
    assert spec.description == "Purge soft-deleted prompts"
    assert spec.tags == ("maintenance", "db")
    assert spec.after == ("backup", "vacuum")
    assert spec.source == "cli"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, None, "nothing to run: give one of command, url, call or steps"),
        (
            {"command": "x", "url": "https://a.b"},
            "url",
            "give only one of command, url, call or steps (found command and url)",
        ),
        ({"command": "   "}, "command", "must not be empty"),
        ({"command": ["ls", "-l"]}, "command", "expected a string, got array"),
        ({"command": "x", "env": {"API_KEY": 5}}, "env.API_KEY", "got integer 5; quote it"),
        ({"command": "x", "env": {"1BAD": "x"}}, "env.1BAD", "not a valid environment variable"),
        ({"command": "x", "env": "A=1"}, "env", "expected a table, got string 'A=1'"),
        ({"command": "x", "env": {"A": "a\0b"}}, "env.A", "must not contain a NUL character"),
        ({"command": "ls\0 -l"}, "command", "must not contain a NUL character"),
        (
            {"url": "https://a.b", "headers": {"X-A": "1\r\nX-B: 2"}},
            "headers.X-A",
            "must not contain a line break",
        ),
        ({"command": "x", "memory_limit": "lots"}, "memory_limit", "'lots' is not a size"),
        (
            {"command": "x", "method": "POST"},
            "method",
            "'method' applies to http jobs (url = ...), not to a command job",
        ),
        ({"url": "ftp://x"}, "url", "'ftp://x' is not an http:// or https:// URL with a host"),
        ({"url": "https://a.b", "method": "FETCH"}, "method", "'FETCH' is not one of GET, POST"),
        ({"url": "https://a.b", "expect_status": [200, 99]}, "expect_status[1]", "99 is not"),
        ({"url": "https://a.b", "expect_status": "2xx"}, "expect_status", "an HTTP status"),
        ({"url": "https://a.b", "body": "x", "json": {}}, "json", "give body or json, not both"),
        ({"url": "https://a.b", "headers": {"Bad Name": "x"}}, "headers.Bad Name", "header"),
        (
            {"call": "pkg.mod.func"},
            "call",
            "'pkg.mod.func' is not a callable's path: write package.module:function",
        ),
        ({"call": "m:f", "isolation": "fork"}, "isolation", "'fork' is not one of 'thread'"),
        ({"call": "m:f", "memory_limit": "1GiB"}, "memory_limit", 'needs isolation = "process"'),
        ({"call": "m:f", "args": "x"}, "args", "expected an array, got string 'x'"),
        ({"call": "m:f", "kwargs": {"when": date(2025, 1, 1)}}, "kwargs.when", "a JSON value"),
        ({"steps": []}, "steps", "a workflow needs at least one step"),
        ({"steps": [{"job": "a"}, {"job": "b"}, {"job": "Bad Id"}]}, "steps[2].job", "not a valid"),
        ({"steps": [{"name": "x"}]}, "steps[0]", 'a step needs job = "<id>" or an inline'),
        ({"steps": [{"url": "https://a.b"}]}, "steps[0].name", "an inline step needs a name"),
        ({"steps": [{"job": "a", "command": "x"}]}, "steps[0].command", "either another job"),
        ({"steps": [{"job": "a", "tiemout": "1m"}]}, "steps[0].tiemout", "did you mean 'timeout'"),
        ({"steps": [{"name": "s", "steps": []}]}, "steps[0].steps", "cannot hold a workflow"),
        ({"steps": [{"name": "s", "url": "https://a.b", "env": {}}]}, "steps[0].env", "command"),
        ({"steps": [{"job": "a"}, {"job": "a"}]}, "steps[1].name", "two steps are named 'a'"),
        ({"steps": [{"job": "cleanup"}]}, "steps[0].job", "a workflow cannot run itself"),
        ({"steps": [{"job": "a"}], "max_parallel": 0}, "max_parallel", "must be at least 1"),
        ({"steps": [{"job": "a"}], "parallel": "yes"}, "parallel", "expected true or false"),
        ({"steps": "a,b"}, "steps", "expected an array"),
        ({"steps": ["a"]}, "steps[0]", "expected a table, got string 'a'"),
    ],
)
def test_target_errors_name_the_field(
    data: dict[str, Any], field: str | None, message: str
) -> None:
    exc = error(data)
    assert exc.field == field
    assert exc.job == "cleanup"
    assert message in str(exc)


def test_reserved_environment_variables_are_refused() -> None:
    name = sorted(RESERVED_ENV)[0]
    exc = error({"command": "x", "env": {name: "1"}})
    assert str(exc) == (
        f"job 'cleanup', field 'env.{name}': "
        f"{name} is set by Clocktower for every run and cannot be overridden"
    )


# --------------------------------------------------------------------------- keys, ids, state


def test_unknown_key_suggests_the_closest_known_key() -> None:
    exc = error({"command": "x", "timout": "10m"})
    assert (
        str(exc) == "job 'cleanup', field 'timout': unknown field 'timout'; did you mean 'timeout'?"
    )


def test_unknown_key_is_reported_before_the_missing_target() -> None:
    assert error({"comand": "x"}).message == "unknown field 'comand'; did you mean 'command'?"


def test_unknown_key_without_a_close_match() -> None:
    assert error({"command": "x", "zzz": 1}).message == "unknown field 'zzz'"


def test_invalid_job_id() -> None:
    exc = error({"command": "x"}, job_id="Daily Cleanup")
    assert exc.field == "id"
    assert "'Daily Cleanup' is not a valid job id" in str(exc)


def test_a_job_must_be_a_table() -> None:
    assert (
        str(error("ls")) == "job 'cleanup': expected a table of the job's fields, got string 'ls'"
    )


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"after": ["cleanup"]}, "after[0]", "a job cannot run after itself"),
        ({"after": ["a", "a"]}, "after[1]", "'a' is listed twice"),
        ({"after": ["A"]}, "after[0]", "'A' is not a valid job id"),
        ({"after": "a"}, "after", "expected an array, got string 'a'"),
        ({"tags": ["x", ""]}, "tags[1]", "must not be empty"),
        ({"description": 5}, "description", "expected a string, got integer 5"),
        ({"paused": "no"}, "paused", "expected true or false, got string 'no'"),
        ({"paused": True, "enabled": True}, "enabled", "give paused or enabled, not both"),
        ({"id": "other"}, "id", "'other' does not match the job's id 'cleanup'"),
        ({"version": SPEC_VERSION + 1}, "version", "written by a newer Clocktower"),
        ({"version": 0}, "version", "must be at least 1"),
    ],
)
def test_common_errors_name_the_field(data: dict[str, Any], field: str, message: str) -> None:
    exc = error({"command": "x", **data})
    assert exc.field == field
    assert message in str(exc)


@pytest.mark.parametrize(
    ("data", "paused"),
    [({}, None), ({"paused": True}, True), ({"enabled": False}, True), ({"enabled": True}, False)],
)
def test_paused_and_enabled(data: dict[str, Any], paused: bool | None) -> None:
    definition = parse_job({"command": "x", **data}, job_id="cleanup")
    assert definition.paused is paused
    assert definition.spec == parse({"command": "x"})


def test_metadata_written_by_job_to_mapping_is_accepted() -> None:
    spec = parse({"command": "x", "version": SPEC_VERSION, "id": "cleanup", "source": "file:x"})
    assert spec.source == "api"  # the caller says where a job comes from, not the job


# --------------------------------------------------------------------------- triggers


@pytest.mark.parametrize(
    ("key", "value", "expr"),
    [
        ("cron", "0 3 * * *", "0 3 * * *"),
        ("every", "10m", "10m"),
        ("every", 300, "5m"),
        ("schedule", "daily at 03:00", "daily at 03:00"),
        ("at", "2030-06-01T09:00:00", "2030-06-01T09:00:00"),
        ("at", datetime(2030, 6, 1, 9, tzinfo=UTC), "2030-06-01T09:00:00+00:00"),
    ],
)
def test_trigger_kinds(key: str, value: object, expr: str) -> None:
    spec = parse({"command": "x", key: value})
    assert spec.trigger == TriggerSpec(kind=key, expr=expr, tz="UTC")  # type: ignore[arg-type]


def test_trigger_zone_defaults_to_the_servers_zone() -> None:
    spec = parse({"command": "x", "cron": "0 18 5 * *"}, default_tz="Europe/Paris")
    assert spec.trigger is not None
    assert spec.trigger.tz == "Europe/Paris"
    spec = parse({"command": "x", "cron": "0 18 5 * *", "tz": "UTC"}, default_tz="Europe/Paris")
    assert spec.trigger is not None
    assert spec.trigger.tz == "UTC"


def test_trigger_bounds_are_kept_as_given() -> None:
    spec = parse(
        {
            "command": "x",
            "cron": "0 9 * * *",
            "tz": "Europe/Paris",
            "start": "2030-01-01T00:00:00",
            "end": datetime(2030, 12, 31, tzinfo=UTC),
            "exclude": ["2030-12-25", date(2030, 1, 1)],
        }
    )
    assert spec.trigger == TriggerSpec(
        kind="cron",
        expr="0 9 * * *",
        tz="Europe/Paris",
        start=datetime(2030, 1, 1),  # naive: local to tz, compiled by the trigger
        end=datetime(2030, 12, 31, tzinfo=UTC),
        exclude=(date(2030, 12, 25), date(2030, 1, 1)),
    )


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"cron": "0 3 * * *", "every": "1h"},
            "every",
            "give at most one of cron, every, at or schedule (found cron and every)",
        ),
        ({"tz": "UTC"}, "tz", "tz needs a schedule: add cron, every, at or schedule"),
        ({"exclude": ["2025-12-25"]}, "exclude", "exclude needs a schedule"),
        ({"cron": "0 3 * * *", "tz": "Europe/Pari"}, "tz", "did you mean 'Europe/Paris'"),
        ({"cron": "0 3 * * *", "tz": "localtime"}, "tz", "'localtime' is the host's zone"),
        ({"cron": 5}, "cron", "expected a string, got integer 5"),
        ({"cron": "* * * * *", "start": "soon"}, "start", "'soon' is not an ISO date-time"),
        ({"cron": "* * * * *", "exclude": ["12/25"]}, "exclude[0]", "'12/25' is not a date"),
        ({"every": True}, "every", "expected a string, got boolean true"),
    ],
)
def test_trigger_errors_name_the_field(data: dict[str, Any], field: str, message: str) -> None:
    exc = error({"command": "x", **data})
    assert exc.field == field
    assert message in str(exc)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cron", "0 3 * *"),
        ("cron", "0 25 * * *"),
        ("every", "often"),
        ("at", "tomorrow-ish"),
        ("schedule", "whenever you like"),
    ],
)
def test_trigger_is_checked_by_compiling_it(key: str, value: str) -> None:
    exc = error({"command": "x", key: value})
    assert exc.field == key
    assert exc.job == "cleanup"
    assert str(exc).startswith(f"job 'cleanup', field '{key}': ")


def test_trigger_end_before_start_is_refused() -> None:
    exc = error(
        {"command": "x", "cron": "* * * * *", "start": "2030-02-01T00:00", "end": "2030-01-01"}
    )
    assert exc.field == "end"


# --------------------------------------------------------------------------- policies


def test_policies_from_the_job_over_server_defaults() -> None:
    defaults = Policies(timeout=300.0, retries=2, overlap=Overlap.QUEUE)
    spec = parse(
        {
            "command": "x",
            "timeout": "1h30m",
            "kill_grace": 5,
            "retry_delay": "10s",
            "retry_max_delay": "5m",
            "max_concurrency": 3,
            "catch_up": "ALL",
            "catch_up_window": "2d",
            "catch_up_paused": True,
            "jitter": "90s",
            "priority": -5,
            "output_cap": "4MiB",
        },
        defaults=defaults,
    )
    assert spec.policies == Policies(
        timeout=5400.0,
        kill_grace=5.0,
        retries=2,
        retry_delay=10.0,
        retry_max_delay=300.0,
        overlap=Overlap.QUEUE,
        max_concurrency=3,
        catch_up=CatchUp.ALL,
        catch_up_window=172800.0,
        catch_up_paused=True,
        jitter=90.0,
        priority=-5,
        output_cap=4 << 20,
    )


def test_catch_up_window_can_be_unbounded_again() -> None:
    defaults = Policies(catch_up_window=3600.0)
    spec = parse({"command": "x", "catch_up_window": "unbounded"}, defaults=defaults)
    assert spec.policies.catch_up_window is None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"timeout": "10x"}, "timeout", "'10x' is not a duration"),
        ({"timeout": 0}, "timeout", "must be more than 0 seconds"),
        ({"retries": -1}, "retries", "must be at least 0, got -1"),
        ({"retries": "3"}, "retries", "expected an integer, got string '3'"),
        ({"retries": 1.5}, "retries", "expected an integer, got float 1.5"),
        ({"retries": True}, "retries", "expected an integer, got boolean true"),
        (
            {"overlap": "skp"},
            "overlap",
            "'skp' is not one of 'skip', 'queue', 'allow', 'replace'; did you mean 'skip'?",
        ),
        ({"catch_up": 1}, "catch_up", "expected one of 'latest', 'all', 'none', got integer 1"),
        ({"max_concurrency": 0}, "max_concurrency", "must be at least 1"),
        ({"output_cap": "1 lot"}, "output_cap", "'1 lot' is not a size"),
        ({"catch_up_paused": 1}, "catch_up_paused", "expected true or false, got integer 1"),
    ],
)
def test_policy_errors_name_the_field(data: dict[str, Any], field: str, message: str) -> None:
    exc = error({"command": "x", **data})
    assert exc.field == field
    assert str(exc) == f"job 'cleanup', field '{field}': " + exc.message
    assert message in exc.message


def test_policies_from_mapping_refuses_non_policy_keys() -> None:
    assert policies_from_mapping({"timeout": "5m"}) == Policies(timeout=300.0)
    with pytest.raises(InvalidSpec) as info:
        policies_from_mapping({"command": "x"})
    assert info.value.field == "command"
    with pytest.raises(InvalidSpec, match="did you mean 'retries'"):
        policies_from_mapping({"retry": 3})
