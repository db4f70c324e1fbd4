"""The target part of a job definition: command, http, python and workflow keys.

`spec.py` decides which kind a job is and calls `parse_target`; this module
reads that kind's keys (also for the inline targets of workflow steps) and
writes them back with `target_to_mapping`. Every error names the field as the
user wrote it, with the step's place for inline targets ("steps[2].url").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from clocktower.model import (
    CommandTarget,
    HttpTarget,
    InvalidSpec,
    PythonTarget,
    Target,
    WorkflowStep,
    WorkflowTarget,
    validate_job_id,
)
from clocktower.units import (
    describe,
    expect_bool,
    expect_int,
    expect_list,
    expect_str,
    expect_str_table,
    expect_table,
    format_duration,
    format_size,
    json_value,
    one_of,
    parse_duration,
    parse_size,
    suggest,
)

TargetKind = Literal["command", "http", "python", "workflow"]
T = TypeVar("T")

# The key that chooses each kind, in the order error messages list them.
KIND_KEYS: dict[str, TargetKind] = {
    "command": "command",
    "url": "http",
    "call": "python",
    "steps": "workflow",
}
TARGET_KEYS: dict[TargetKind, tuple[str, ...]] = {
    "command": ("command", "cwd", "env", "memory_limit"),
    "http": ("url", "method", "headers", "body", "json", "expect_status", "success_field"),
    "python": ("call", "args", "kwargs", "isolation", "memory_limit"),
    "workflow": ("steps", "parallel", "max_parallel", "continue_on_failure"),
}
KIND_NAMES: dict[TargetKind, str] = {
    "command": "command jobs (command = ...)",
    "http": "http jobs (url = ...)",
    "python": "python jobs (call = ...)",
    "workflow": "workflows (steps = [...])",
}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
STEP_KEYS = ("name", "job", "timeout")
INLINE_STEP_KINDS: tuple[TargetKind, ...] = ("command", "http", "python")

# Set by Clocktower for every run (see executors.base.FireContext.as_env).
RESERVED_ENV = frozenset(
    {
        "CLOCKTOWER_JOB",
        "CLOCKTOWER_RUN_ID",
        "CLOCKTOWER_ATTEMPT",
        "CLOCKTOWER_SCHEDULED_FOR",
        "CLOCKTOWER_IDEMPOTENCY_KEY",
        "CLOCKTOWER_TRIGGER",
        "CLOCKTOWER_ARTIFACTS",
        "CLOCKTOWER_PAYLOAD",
    }
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CALL = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def choose_kind(data: Mapping[str, Any], prefix: str = "") -> TargetKind:
    """The one target kind `data` declares; an error lists the choices otherwise."""
    given = [key for key in KIND_KEYS if key in data]
    if len(given) == 1:
        return KIND_KEYS[given[0]]
    if not given:
        raise InvalidSpec(
            "nothing to run: give one of command, url, call or steps",
            field=prefix.rstrip(".") or None,
        )
    found = " and ".join(given)
    raise InvalidSpec(
        f"give only one of command, url, call or steps (found {found})",
        field=prefix + given[1],
    )


def check_kind_keys(data: Mapping[str, Any], kind: TargetKind, prefix: str = "") -> None:
    """Refuse keys that belong to another kind of target than `kind`."""
    own = set(TARGET_KEYS[kind])
    for other, keys in TARGET_KEYS.items():
        for key in keys:
            if key in data and key not in own and key != "env":
                article = "an" if kind == "http" else "a"
                noun = "step" if prefix else "job"
                raise InvalidSpec(
                    f"{key!r} applies to {KIND_NAMES[other]}, not to {article} {kind} {noun}",
                    field=prefix + key,
                )


def parse_target(data: Mapping[str, Any], kind: TargetKind, prefix: str = "") -> Target:
    """The target of kind `kind` from its keys in `data` (others are not looked at)."""
    if kind == "command":
        return _command(data, prefix)
    if kind == "http":
        return _http(data, prefix)
    if kind == "python":
        return _python(data, prefix)
    return _workflow(data, prefix)


# --------------------------------------------------------------------------- command


def _command(data: Mapping[str, Any], prefix: str) -> CommandTarget:
    return CommandTarget(
        command=_process_text(data["command"], prefix + "command"),
        cwd=_optional(data, "cwd", prefix, _process_text),
        env=parse_env(data["env"], prefix + "env") if "env" in data else {},
        memory_limit=_optional(data, "memory_limit", prefix, parse_size),
    )


def parse_env(value: object, field: str) -> dict[str, str]:
    """Environment variables: names as the shell knows them, values strings (with ${VAR})."""
    env = expect_str_table(value, field)
    for name in env:
        if not _ENV_NAME.match(name):
            raise InvalidSpec(
                f"{name!r} is not a valid environment variable name "
                "(letters, digits and '_', not starting with a digit)",
                field=f"{field}.{name}",
            )
        if name in RESERVED_ENV:
            raise InvalidSpec(
                f"{name} is set by Clocktower for every run and cannot be overridden",
                field=f"{field}.{name}",
            )
        _no_characters(env[name], "\0", "a NUL character", f"{field}.{name}")
    return env


def _process_text(value: object, field: str) -> str:
    """Text handed to the operating system, which cannot hold a NUL character."""
    text = expect_str(value, field)
    _no_characters(text, "\0", "a NUL character", field)
    return text


def _no_characters(text: str, characters: str, name: str, field: str) -> None:
    if any(ch in text for ch in characters):
        raise InvalidSpec(f"must not contain {name}", field=field)


# --------------------------------------------------------------------------- http


def _http(data: Mapping[str, Any], prefix: str) -> HttpTarget:
    if "body" in data and "json" in data:
        raise InvalidSpec("give body or json, not both", field=prefix + "json")
    return HttpTarget(
        url=_url(data["url"], prefix + "url"),
        method=_method(data.get("method", "GET"), prefix + "method"),
        headers=_headers(data["headers"], prefix + "headers") if "headers" in data else {},
        body=_optional(data, "body", prefix, _body),
        json=json_value(data["json"], prefix + "json") if "json" in data else None,
        expect_status=_statuses(data.get("expect_status", []), prefix + "expect_status"),
        success_field=_optional(data, "success_field", prefix, expect_str),
    )


def _url(value: object, field: str) -> str:
    url = expect_str(value, field)
    if "${" in url:  # expanded from the server's environment at run time
        return url
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
        raise InvalidSpec(f"{url!r} is not an http:// or https:// URL with a host", field=field)
    return url


def _method(value: object, field: str) -> str:
    listed = ", ".join(HTTP_METHODS)
    if not isinstance(value, str):
        raise InvalidSpec(f"expected one of {listed}, got {describe(value)}", field=field)
    if value.upper() not in HTTP_METHODS:
        raise InvalidSpec(f"{value!r} is not one of {listed}", field=field)
    return value.upper()


def _headers(value: object, field: str) -> dict[str, str]:
    headers = expect_str_table(value, field)
    for name in headers:
        if not _HEADER_NAME.match(name):
            raise InvalidSpec(f"{name!r} is not a valid HTTP header name", field=f"{field}.{name}")
        _no_characters(headers[name], "\r\n\0", "a line break", f"{field}.{name}")
    return headers


def _body(value: object, field: str) -> str:
    return expect_str(value, field, allow_empty=True)


def _statuses(value: object, field: str) -> tuple[int, ...]:
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else None
    if items is None:
        if not isinstance(value, list | tuple):
            raise InvalidSpec(
                f"expected an HTTP status or an array of them, got {describe(value)}", field=field
            )
        items = list(value)
    statuses = tuple(_status(item, f"{field}[{i}]") for i, item in enumerate(items))
    return statuses


def _status(value: object, field: str) -> int:
    status = expect_int(value, field)
    if not 100 <= status <= 599:
        raise InvalidSpec(f"{status} is not an HTTP status (100 to 599)", field=field)
    return status


# --------------------------------------------------------------------------- python


def _python(data: Mapping[str, Any], prefix: str) -> PythonTarget:
    isolation = one_of(data.get("isolation", "thread"), ("thread", "process"), prefix + "isolation")
    memory_limit = _optional(data, "memory_limit", prefix, parse_size)
    if memory_limit is not None and isolation != "process":
        raise InvalidSpec(
            'a memory limit needs isolation = "process" (a thread shares the server\'s memory)',
            field=prefix + "memory_limit",
        )
    return PythonTarget(
        call=_call(data["call"], prefix + "call"),
        args=tuple(json_value(expect_list(data.get("args", []), prefix + "args"), prefix + "args")),
        kwargs=json_value(
            expect_table(data.get("kwargs", {}), prefix + "kwargs"), prefix + "kwargs"
        ),
        isolation="process" if isolation == "process" else "thread",
        memory_limit=memory_limit,
    )


def _call(value: object, field: str) -> str:
    call = expect_str(value, field)
    if not _CALL.match(call):
        raise InvalidSpec(
            f"{call!r} is not a callable's path: write package.module:function",
            field=field,
        )
    return call


# --------------------------------------------------------------------------- workflow


def _workflow(data: Mapping[str, Any], prefix: str) -> WorkflowTarget:
    items = expect_list(data["steps"], prefix + "steps")
    if not items:
        raise InvalidSpec("a workflow needs at least one step", field=prefix + "steps")
    steps = tuple(_step(item, f"{prefix}steps[{i}]") for i, item in enumerate(items))
    _check_step_names(steps, prefix + "steps")
    return WorkflowTarget(
        steps=steps,
        parallel=expect_bool(data.get("parallel", False), prefix + "parallel"),
        max_parallel=expect_int(data.get("max_parallel", 4), prefix + "max_parallel", minimum=1),
        continue_on_failure=expect_bool(
            data.get("continue_on_failure", False), prefix + "continue_on_failure"
        ),
    )


def _step(value: object, field: str) -> WorkflowStep:
    step = expect_table(value, field)
    prefix = field + "."
    _check_step_keys(step, prefix)
    timeout = _optional(step, "timeout", prefix, parse_duration)
    if timeout is not None and timeout <= 0:
        raise InvalidSpec("must be more than 0 seconds", field=prefix + "timeout")
    if "job" in step:
        return _job_step(step, prefix, timeout)
    if not any(key in step for key in KIND_KEYS):
        raise InvalidSpec(
            'a step needs job = "<id>" or an inline target (command, url or call)', field=field
        )
    kind = choose_kind(step, prefix)
    check_kind_keys(step, kind, prefix)
    if "env" in step and kind != "command":
        raise InvalidSpec("env applies to command steps only", field=prefix + "env")
    name = expect_str(step["name"], prefix + "name") if "name" in step else None
    if name is None:
        raise InvalidSpec("an inline step needs a name", field=prefix + "name")
    return WorkflowStep(name=name, target=parse_target(step, kind, prefix), timeout=timeout)


def _job_step(step: Mapping[str, Any], prefix: str, timeout: float | None) -> WorkflowStep:
    extra = [key for key in step if key not in STEP_KEYS]
    if extra:
        raise InvalidSpec(
            "a step runs either another job (job = ...) or an inline target, not both",
            field=prefix + extra[0],
        )
    job = job_ref(step["job"], prefix + "job")
    name = expect_str(step["name"], prefix + "name") if "name" in step else job
    return WorkflowStep(name=name, job=job, timeout=timeout)


def _check_step_keys(step: Mapping[str, Any], prefix: str) -> None:
    known = set(STEP_KEYS)
    for kind in INLINE_STEP_KINDS:
        known.update(TARGET_KEYS[kind])
    for key in step:
        if key in TARGET_KEYS["workflow"]:
            raise InvalidSpec(
                "a step cannot hold a workflow: make it a job of its own and give its id as job",
                field=prefix + key,
            )
        if key not in known:
            hint = suggest(key, sorted(known))
            raise InvalidSpec(f"unknown field {key!r}{hint}", field=prefix + key)


def _check_step_names(steps: tuple[WorkflowStep, ...], field: str) -> None:
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step.name in seen:
            raise InvalidSpec(
                f"two steps are named {step.name!r}; step names must be unique",
                field=f"{field}[{i}].name",
            )
        seen.add(step.name)


def job_ref(value: object, field: str) -> str:
    """Another job's id, checked like a job id."""
    job_id = expect_str(value, field)
    try:
        return validate_job_id(job_id)
    except InvalidSpec as exc:
        raise InvalidSpec(exc.message, field=field) from None


def _optional(
    data: Mapping[str, Any], key: str, prefix: str, parse: Callable[[object, str], T]
) -> T | None:
    return parse(data[key], prefix + key) if key in data else None


# --------------------------------------------------------------------------- writing


def target_to_mapping(target: Target) -> dict[str, Any]:
    """The keys of `target`, leaving out those at their defaults."""
    if isinstance(target, CommandTarget):
        return _command_to_mapping(target)
    if isinstance(target, HttpTarget):
        return _http_to_mapping(target)
    if isinstance(target, PythonTarget):
        return _python_to_mapping(target)
    return _workflow_to_mapping(target)


def _command_to_mapping(target: CommandTarget) -> dict[str, Any]:
    out: dict[str, Any] = {"command": target.command}
    if target.cwd is not None:
        out["cwd"] = target.cwd
    if target.env:
        out["env"] = dict(target.env)
    if target.memory_limit is not None:
        out["memory_limit"] = format_size(target.memory_limit)
    return out


def _http_to_mapping(target: HttpTarget) -> dict[str, Any]:
    out: dict[str, Any] = {"url": target.url}
    if target.method != "GET":
        out["method"] = target.method
    if target.headers:
        out["headers"] = dict(target.headers)
    if target.body is not None:
        out["body"] = target.body
    if target.json is not None:
        out["json"] = target.json
    if len(target.expect_status) == 1:
        out["expect_status"] = target.expect_status[0]
    elif target.expect_status:
        out["expect_status"] = list(target.expect_status)
    if target.success_field is not None:
        out["success_field"] = target.success_field
    return out


def _python_to_mapping(target: PythonTarget) -> dict[str, Any]:
    out: dict[str, Any] = {"call": target.call}
    if target.args:
        out["args"] = list(target.args)
    if target.kwargs:
        out["kwargs"] = dict(target.kwargs)
    if target.isolation != "thread":
        out["isolation"] = target.isolation
    if target.memory_limit is not None:
        out["memory_limit"] = format_size(target.memory_limit)
    return out


def _workflow_to_mapping(target: WorkflowTarget) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": [_step_to_mapping(step) for step in target.steps]}
    if target.parallel:
        out["parallel"] = True
    if target.max_parallel != 4:
        out["max_parallel"] = target.max_parallel
    if target.continue_on_failure:
        out["continue_on_failure"] = True
    return out


def _step_to_mapping(step: WorkflowStep) -> dict[str, Any]:
    out: dict[str, Any] = {"name": step.name}
    if step.job is not None:
        out["job"] = step.job
    if step.target is not None:
        out.update(target_to_mapping(step.target))
    if step.timeout is not None:
        out["timeout"] = format_duration(step.timeout)
    return out
