"""Job definitions as plain mappings (TOML, JSON, CLI flags) to `JobSpec` and back.

The one place where a job definition is validated: the config file, the REST
API and the CLI all call `job_from_mapping`, so they accept and refuse the same
things with the same words. Keys are flat, so a job reads naturally as a TOML
table::

    [jobs.cleanup]
    command = "python manage.py cleanup_deleted_prompts"
    cron = "0 3 * * *"
    timeout = "15m"
    env = { DATABASE_URL = "${DATABASE_URL}" }

Every error is an `InvalidSpec` naming the job and the field as the user wrote
it ("timeout", "env.API_KEY", "steps[2].job"); the first error wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from clocktower.model import (
    SPEC_VERSION,
    CatchUp,
    CommandTarget,
    InvalidSpec,
    JobSpec,
    Overlap,
    Policies,
    Target,
    TriggerSpec,
    WorkflowTarget,
    validate_job_id,
)
from clocktower.spec_targets import (
    TARGET_KEYS,
    check_kind_keys,
    choose_kind,
    job_ref,
    parse_env,
    parse_target,
    target_to_mapping,
)
from clocktower.triggers import compile_trigger
from clocktower.units import (
    describe,
    expect_bool,
    expect_int,
    expect_list,
    expect_str,
    expect_table,
    format_duration,
    format_size,
    one_of,
    parse_date,
    parse_datetime,
    parse_duration,
    parse_positive_duration,
    parse_size,
    parse_timezone,
    suggest,
    wrong_type,
)

__all__ = [
    "JOB_KEYS",
    "POLICY_KEYS",
    "JobDefinition",
    "job_from_mapping",
    "job_from_stored",
    "job_to_mapping",
    "parse_job",
    "policies_from_mapping",
    "policies_to_mapping",
]

TriggerKindName = Literal["cron", "every", "at", "schedule"]
TRIGGER_KINDS: tuple[TriggerKindName, ...] = ("cron", "every", "at", "schedule")
TRIGGER_OPTIONS = ("tz", "start", "end", "exclude")
POLICY_KEYS = tuple(f.name for f in dataclasses.fields(Policies))
COMMON_KEYS = ("description", "tags", "after", "env", "paused", "enabled")
META_KEYS = ("version", "id", "source")  # written by job_to_mapping; read back, never required
JOB_KEYS: frozenset[str] = frozenset(
    (
        *META_KEYS,
        *COMMON_KEYS,
        *TRIGGER_KINDS,
        *TRIGGER_OPTIONS,
        *POLICY_KEYS,
        *(key for keys in TARGET_KEYS.values() for key in keys),
    )
)


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A parsed job and the state its definition asks for.

    `paused` is None when the definition says nothing (`paused` or `enabled`
    absent): whoever applies it keeps the job's current state.
    """

    spec: JobSpec
    paused: bool | None = None


# --------------------------------------------------------------------------- reading


def job_from_mapping(
    data: Mapping[str, Any],
    *,
    job_id: str,
    defaults: Policies | None = None,
    source: str = "api",
    default_tz: str = "UTC",
) -> JobSpec:
    """The validated `JobSpec` that `data` describes; raises `InvalidSpec`.

    `defaults` are the server-wide policies a job gets for the keys it leaves
    out; `default_tz` the zone of a trigger without `tz`.
    """
    return parse_job(
        data, job_id=job_id, defaults=defaults, source=source, default_tz=default_tz
    ).spec


def parse_job(
    data: Mapping[str, Any],
    *,
    job_id: str,
    defaults: Policies | None = None,
    source: str = "api",
    default_tz: str = "UTC",
) -> JobDefinition:
    """Like `job_from_mapping`, also reading `paused` / `enabled`."""
    try:
        validate_job_id(job_id)
        table = _job_table(data)
        _check_meta(table, job_id)
        spec = _job_spec(table, job_id, defaults or Policies(), source, default_tz)
        paused = _paused(table)
        if spec.trigger is not None:
            _compile(spec.trigger, job_id)
    except InvalidSpec as exc:
        raise exc.located(job=job_id) from None
    return JobDefinition(spec=spec, paused=paused)


def job_from_stored(data: Mapping[str, Any]) -> JobSpec:
    """A spec the store kept (`job_to_mapping`'s output), upgraded from older versions."""
    table = expect_table(data, "job")
    job_id = table.get("id")
    if not isinstance(job_id, str):
        raise wrong_type("the job's id as a string", job_id, "id")
    try:
        if "version" not in table:
            raise InvalidSpec("the stored job has no spec version", field="version")
        upgraded = _upgrade(table, _version(table["version"]))
        source = expect_str(upgraded.get("source", "api"), "source")
    except InvalidSpec as exc:
        raise exc.located(job=job_id) from None
    return job_from_mapping(upgraded, job_id=job_id, source=source)


# Stored shapes of older versions, upgraded one step at a time: {1: upgrade_1_to_2, ...}.
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _upgrade(table: Mapping[str, Any], version: int) -> dict[str, Any]:
    data = dict(table)
    while version < SPEC_VERSION:
        data = _UPGRADES[version](data)
        version += 1
    data["version"] = SPEC_VERSION
    return data


def _version(value: object) -> int:
    version = expect_int(value, "version", minimum=1)
    if version > SPEC_VERSION:
        raise InvalidSpec(
            f"written by a newer Clocktower (spec version {version}; this one reads "
            f"versions up to {SPEC_VERSION}): upgrade Clocktower to use it",
            field="version",
        )
    return version


def _job_table(data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidSpec(f"expected a table of the job's fields, got {describe(data)}")
    table = expect_table(data, "job")
    for key in table:
        if key not in JOB_KEYS:
            raise InvalidSpec(f"unknown field {key!r}{suggest(key, JOB_KEYS)}", field=key)
    return table


def _check_meta(table: Mapping[str, Any], job_id: str) -> None:
    if "version" in table:
        _version(table["version"])
    if "id" in table and table["id"] != job_id:
        raise InvalidSpec(f"{table['id']!r} does not match the job's id {job_id!r}", field="id")
    if "source" in table:
        expect_str(table["source"], "source")  # read-only: set by whoever loads the job


def _job_spec(
    table: Mapping[str, Any], job_id: str, defaults: Policies, source: str, default_tz: str
) -> JobSpec:
    kind = choose_kind(table)
    check_kind_keys(table, kind)
    target = parse_target(table, kind)
    _check_not_recursive(target, job_id)
    job_env = parse_env(table["env"], "env") if "env" in table and kind != "command" else {}
    return JobSpec(
        id=job_id,
        target=target,
        trigger=_trigger(table, default_tz),
        policies=_policies(table, defaults),
        description=expect_str(table.get("description", ""), "description", allow_empty=True),
        tags=_tags(table.get("tags", [])),
        after=_after(table.get("after", []), job_id),
        env=job_env,
        source=source,
    )


def _check_not_recursive(target: Target, job_id: str) -> None:
    if not isinstance(target, WorkflowTarget):
        return
    for i, step in enumerate(target.steps):
        if step.job == job_id:
            raise InvalidSpec("a workflow cannot run itself", field=f"steps[{i}].job")


def _tags(value: object) -> tuple[str, ...]:
    tags = [expect_str(tag, f"tags[{i}]") for i, tag in enumerate(expect_list(value, "tags"))]
    _no_duplicates(tags, "tags")
    return tuple(tags)


def _after(value: object, job_id: str) -> tuple[str, ...]:
    ids = [job_ref(ref, f"after[{i}]") for i, ref in enumerate(expect_list(value, "after"))]
    _no_duplicates(ids, "after")
    if job_id in ids:
        raise InvalidSpec("a job cannot run after itself", field=f"after[{ids.index(job_id)}]")
    return tuple(ids)


def _no_duplicates(items: list[str], field: str) -> None:
    for i, item in enumerate(items):
        if item in items[:i]:
            raise InvalidSpec(f"{item!r} is listed twice", field=f"{field}[{i}]")


def _paused(table: Mapping[str, Any]) -> bool | None:
    if "paused" in table and "enabled" in table:
        raise InvalidSpec("give paused or enabled, not both", field="enabled")
    if "paused" in table:
        return expect_bool(table["paused"], "paused")
    if "enabled" in table:
        return not expect_bool(table["enabled"], "enabled")
    return None


# --------------------------------------------------------------------------- trigger


def _trigger(table: Mapping[str, Any], default_tz: str) -> TriggerSpec | None:
    given = [key for key in TRIGGER_KINDS if key in table]
    if len(given) > 1:
        raise InvalidSpec(
            f"give at most one of cron, every, at or schedule (found {' and '.join(given)})",
            field=given[1],
        )
    if not given:
        options = [key for key in TRIGGER_OPTIONS if key in table]
        if options:
            raise InvalidSpec(
                f"{options[0]} needs a schedule: add cron, every, at or schedule",
                field=options[0],
            )
        return None
    kind = given[0]
    return TriggerSpec(
        kind=kind,
        expr=_trigger_expr(kind, table[kind]),
        tz=parse_timezone(table["tz"], "tz") if "tz" in table else default_tz,
        start=parse_datetime(table["start"], "start") if "start" in table else None,
        end=parse_datetime(table["end"], "end") if "end" in table else None,
        exclude=_exclude(table.get("exclude", [])),
    )


def _trigger_expr(kind: str, value: object) -> str:
    if kind == "at" and isinstance(value, date):  # a TOML date-time
        return value.isoformat()
    if kind == "every" and isinstance(value, int | float) and not isinstance(value, bool):
        return format_duration(parse_duration(value, kind))
    return expect_str(value, kind).strip()


def _exclude(value: object) -> tuple[date, ...]:
    return tuple(
        parse_date(item, f"exclude[{i}]") for i, item in enumerate(expect_list(value, "exclude"))
    )


def _compile(trigger: TriggerSpec, job_id: str) -> None:
    """Check the trigger the only sure way: by compiling it."""
    try:
        compile_trigger(trigger, job_id=job_id)
    except InvalidSpec:
        raise
    except ValueError as exc:  # a trigger error that forgot its field
        raise InvalidSpec(str(exc), field=trigger.kind) from None


# --------------------------------------------------------------------------- policies


def _window(value: object, field: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "unbounded"):
        return None
    return parse_positive_duration(value, field)


def _count(minimum: int | None) -> Callable[[object, str], int]:
    return lambda value, field: expect_int(value, field, minimum=minimum)


_POLICY_PARSERS: dict[str, Callable[[object, str], object]] = {
    "timeout": parse_positive_duration,
    "kill_grace": parse_duration,
    "retries": _count(0),
    "retry_delay": parse_duration,
    "retry_max_delay": parse_duration,
    "overlap": lambda v, f: Overlap(one_of(v, [o.value for o in Overlap], f)),
    "max_concurrency": _count(1),
    "catch_up": lambda v, f: CatchUp(one_of(v, [c.value for c in CatchUp], f)),
    "catch_up_window": _window,
    "catch_up_paused": expect_bool,
    "jitter": parse_duration,
    "priority": _count(None),
    "output_cap": parse_size,
}


def _policies(table: Mapping[str, Any], base: Policies) -> Policies:
    changes: dict[str, Any] = {
        key: _POLICY_PARSERS[key](table[key], key) for key in POLICY_KEYS if key in table
    }
    return dataclasses.replace(base, **changes)


def policies_from_mapping(data: Mapping[str, Any], *, base: Policies | None = None) -> Policies:
    """Policies from a table holding only policy keys (the config's [defaults])."""
    table = expect_table(data, "defaults")
    for key in table:
        if key not in POLICY_KEYS:
            raise InvalidSpec(f"unknown field {key!r}{suggest(key, POLICY_KEYS)}", field=key)
    return _policies(table, base or Policies())


def policies_to_mapping(policies: Policies) -> dict[str, Any]:
    """Every policy, durations and sizes as text ("15m", "1MiB")."""
    return {
        "timeout": format_duration(policies.timeout),
        "kill_grace": format_duration(policies.kill_grace),
        "retries": policies.retries,
        "retry_delay": format_duration(policies.retry_delay),
        "retry_max_delay": format_duration(policies.retry_max_delay),
        "overlap": policies.overlap.value,
        "max_concurrency": policies.max_concurrency,
        "catch_up": policies.catch_up.value,
        "catch_up_window": (
            "unbounded"
            if policies.catch_up_window is None
            else format_duration(policies.catch_up_window)
        ),
        "catch_up_paused": policies.catch_up_paused,
        "jitter": format_duration(policies.jitter),
        "priority": policies.priority,
        "output_cap": format_size(policies.output_cap),
    }


# --------------------------------------------------------------------------- writing


def job_to_mapping(spec: JobSpec) -> dict[str, Any]:
    """`spec` as JSON-able flat keys that `job_from_mapping` reads back to an equal spec.

    Target and trigger keys at their defaults are left out; every policy is
    written, because the defaults a job is read with are the server's and can
    change. The trigger's zone is always written for the same reason.
    """
    out: dict[str, Any] = {"version": SPEC_VERSION, "id": spec.id, "source": spec.source}
    out.update(target_to_mapping(spec.target))
    if spec.env:
        inner = out.get("env", {}) if isinstance(spec.target, CommandTarget) else {}
        out["env"] = {**spec.env, **inner}
    if spec.trigger is not None:
        out.update(_trigger_to_mapping(spec.trigger))
    out.update(policies_to_mapping(spec.policies))
    if spec.description:
        out["description"] = spec.description
    if spec.tags:
        out["tags"] = list(spec.tags)
    if spec.after:
        out["after"] = list(spec.after)
    return out


def _trigger_to_mapping(trigger: TriggerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {trigger.kind: trigger.expr, "tz": trigger.tz}
    if trigger.start is not None:
        out["start"] = trigger.start.isoformat()
    if trigger.end is not None:
        out["end"] = trigger.end.isoformat()
    if trigger.exclude:
        out["exclude"] = [day.isoformat() for day in trigger.exclude]
    return out
