"""Jobs written back as mappings: job_to_mapping, job_from_stored, and the exact round trip."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clocktower.model import (
    JOB_ID_RE,
    SPEC_VERSION,
    CatchUp,
    CommandTarget,
    HttpTarget,
    InvalidSpec,
    JobSpec,
    Overlap,
    Policies,
    PythonTarget,
    Target,
    TriggerSpec,
    WorkflowStep,
    WorkflowTarget,
)
from clocktower.spec import job_from_mapping, job_from_stored, job_to_mapping
from clocktower.spec_targets import HTTP_METHODS, RESERVED_ENV


def parse(data: dict[str, object], job_id: str = "cleanup", source: str = "api") -> JobSpec:
    return job_from_mapping(data, job_id=job_id, source=source)


# --------------------------------------------------------------------------- writing back


def test_job_to_mapping_is_flat_and_leaves_out_target_defaults() -> None:
    spec = parse({"command": "python manage.py x", "cron": "0 3 * * *", "timeout": "15m"})
    out = job_to_mapping(spec)
    assert out["version"] == SPEC_VERSION
    assert out["id"] == "cleanup"
    assert out["command"] == "python manage.py x"
    assert out["cron"] == "0 3 * * *"
    assert out["tz"] == "UTC"
    assert out["timeout"] == "15m"
    assert out["output_cap"] == "1MiB"
    for absent in ("cwd", "env", "memory_limit", "start", "exclude", "description", "tags"):
        assert absent not in out
    assert json.loads(json.dumps(out)) == out


def test_job_wide_env_of_a_command_job_is_written_under_its_env() -> None:
    spec = JobSpec(
        id="a", target=CommandTarget("x", env={"A": "target"}), env={"A": "job", "B": "job"}
    )
    out = job_to_mapping(spec)
    assert out["env"] == {"A": "target", "B": "job"}
    assert parse(out, job_id="a").target == CommandTarget("x", env={"A": "target", "B": "job"})


def test_stored_jobs_keep_their_source_and_version() -> None:
    spec = parse({"url": "https://a.example/x", "every": "5m"}, source="file:/etc/ct.toml")
    stored = json.loads(json.dumps(job_to_mapping(spec)))
    assert job_from_stored(stored) == spec


def test_stored_job_from_a_newer_version_is_refused() -> None:
    stored = job_to_mapping(parse({"command": "x"}))
    stored["version"] = SPEC_VERSION + 1
    with pytest.raises(InvalidSpec) as info:
        job_from_stored(stored)
    assert info.value.field == "version"
    assert info.value.job == "cleanup"
    assert "written by a newer Clocktower" in str(info.value)


def test_stored_job_without_version_or_id() -> None:
    stored = job_to_mapping(parse({"command": "x"}))
    del stored["version"]
    with pytest.raises(InvalidSpec, match="no spec version"):
        job_from_stored(stored)
    with pytest.raises(InvalidSpec, match="expected the job's id as a string"):
        job_from_stored({"command": "x", "version": 1})


# --------------------------------------------------------------------------- round trip

job_ids = st.from_regex(JOB_ID_RE, fullmatch=True)
words = st.text(st.characters(exclude_characters="\0"), min_size=1, max_size=12).filter(str.strip)
durations = st.one_of(
    st.integers(min_value=0, max_value=10**7).map(float),
    st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False),
)
positive_durations = durations.filter(lambda d: d > 0)
sizes = st.one_of(
    st.integers(min_value=1, max_value=1 << 40), st.sampled_from([1 << 30, 5 * 10**8])
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: name not in RESERVED_ENV
)
no_nul = st.text(st.characters(exclude_characters="\0"), max_size=12)
envs = st.dictionaries(env_names, no_nul, max_size=3)
header_values = st.text(st.characters(exclude_characters="\r\n\0"), max_size=12)
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True)


@st.composite
def command_targets(draw: st.DrawFn) -> CommandTarget:
    return CommandTarget(
        command=draw(words),
        cwd=draw(st.none() | words),
        env=draw(envs),
        memory_limit=draw(st.none() | sizes),
    )


@st.composite
def http_targets(draw: st.DrawFn) -> HttpTarget:
    body = draw(st.none() | st.text(max_size=12))
    return HttpTarget(
        url=draw(st.sampled_from(["https://app.example.com/api/cron", "${APP_URL}/api/x"])),
        method=draw(st.sampled_from(HTTP_METHODS)),
        headers=draw(st.dictionaries(header_names, header_values, max_size=3)),
        body=body,
        json=draw(json_values) if body is None else None,
        expect_status=tuple(draw(st.lists(st.integers(100, 599), max_size=3))),
        success_field=draw(st.none() | words),
    )


@st.composite
def python_targets(draw: st.DrawFn) -> PythonTarget:
    isolation = draw(st.sampled_from(["thread", "process"]))
    return PythonTarget(
        call=draw(st.sampled_from(["app.tasks:run", "pkg.mod:Reports.monthly"])),
        args=tuple(draw(st.lists(json_values, max_size=3))),
        kwargs=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        isolation=isolation,
        memory_limit=draw(st.none() | sizes) if isolation == "process" else None,
    )


inline_targets = st.one_of(command_targets(), http_targets(), python_targets())


@st.composite
def workflow_targets(draw: st.DrawFn, job_id: str) -> WorkflowTarget:
    names = draw(st.lists(words, min_size=1, max_size=4, unique=True))
    steps = []
    for name in names:
        timeout = draw(st.none() | positive_durations)
        if draw(st.booleans()):
            ref = draw(job_ids.filter(lambda ref: ref != job_id))
            steps.append(WorkflowStep(name=name, job=ref, timeout=timeout))
        else:
            steps.append(WorkflowStep(name=name, target=draw(inline_targets), timeout=timeout))
    return WorkflowTarget(
        steps=tuple(steps),
        parallel=draw(st.booleans()),
        max_parallel=draw(st.integers(1, 64)),
        continue_on_failure=draw(st.booleans()),
    )


@st.composite
def triggers(draw: st.DrawFn) -> TriggerSpec:
    kind, expr = draw(
        st.sampled_from(
            [
                ("cron", "0 3 * * *"),
                ("cron", "*/15 * * * *"),
                ("cron", "0 18 5 * *"),
                ("every", "10m"),
                ("every", "7d"),
                ("schedule", "daily at 03:00"),
                ("schedule", "mondays at 06:00"),
                ("at", "2030-06-01T09:00:00"),
                ("at", "2030-06-01T09:00:00+02:00"),
            ]
        )
    )
    tz = draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]))
    if kind == "at" or not draw(st.booleans()):
        return TriggerSpec(kind=kind, expr=expr, tz=tz)
    aware = draw(st.booleans())
    zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])
    start = draw(
        st.datetimes(
            datetime(2000, 1, 1), datetime(2090, 1, 1), timezones=zones if aware else st.none()
        )
    )
    end = start + draw(st.timedeltas(timedelta(days=1), timedelta(days=3650)))
    exclude = draw(st.lists(st.dates(date(2000, 1, 1), date(2100, 1, 1)), max_size=3))
    return TriggerSpec(
        kind=kind,
        expr=expr,
        tz=tz,
        start=draw(st.none() | st.just(start)),
        end=draw(st.none() | st.just(end)),
        exclude=tuple(exclude),
    )


policies = st.builds(
    Policies,
    timeout=positive_durations,
    kill_grace=durations,
    retries=st.integers(0, 100),
    retry_delay=durations,
    retry_max_delay=durations,
    overlap=st.sampled_from(Overlap),
    max_concurrency=st.integers(1, 100),
    catch_up=st.sampled_from(CatchUp),
    catch_up_window=st.none() | positive_durations,
    catch_up_paused=st.booleans(),
    jitter=durations,
    priority=st.integers(-1000, 1000),
    output_cap=sizes,
)


@st.composite
def job_specs(draw: st.DrawFn) -> JobSpec:
    job_id = draw(job_ids)
    target: Target = draw(
        st.one_of(command_targets(), http_targets(), python_targets(), workflow_targets(job_id))
    )
    return JobSpec(
        id=job_id,
        target=target,
        trigger=draw(st.none() | triggers()),
        policies=draw(policies),
        description=draw(st.text(max_size=20)),
        tags=tuple(draw(st.lists(words, max_size=3, unique=True))),
        after=tuple(
            draw(st.lists(job_ids.filter(lambda ref: ref != job_id), max_size=3, unique=True))
        ),
        env={} if isinstance(target, CommandTarget) else draw(envs),
        source=draw(st.sampled_from(["api", "cli", "python", "file:/etc/clocktower.toml"])),
    )


@given(job_specs())
def test_round_trip_is_exact(spec: JobSpec) -> None:
    mapping = job_to_mapping(spec)
    assert job_from_mapping(mapping, job_id=spec.id, source=spec.source) == spec
    # through JSON and the store, which reads id and source from the mapping
    stored = json.loads(json.dumps(mapping, allow_nan=False))
    assert stored["version"] == SPEC_VERSION
    assert job_from_stored(stored) == spec
    # server defaults and zone do not leak into a job that was written out whole
    other = Policies(timeout=1.0, retries=9, overlap=Overlap.ALLOW, catch_up_window=60.0)
    again = job_from_mapping(
        mapping, job_id=spec.id, source=spec.source, defaults=other, default_tz="Asia/Tokyo"
    )
    assert again == spec
