"""The API's shapes (pydantic, for the OpenAPI document) and the conversions
from the store's rows and the model's objects to them.

Every instant is ISO-8601 UTC with a `Z`. A job's `definition` is exactly what
`POST /api/v1/jobs` accepts, so a client can read a job, change a field and
`PUT` it back.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clocktower.model import InvalidSpec, Job, Run, TriggerSpec
from clocktower.spec import JOB_KEYS, job_to_mapping
from clocktower.store.views import JobRow, Outcome
from clocktower.triggers import compile_trigger, readable_form

Scope = Literal["read", "operate", "admin"]
TEXT = r"^[^\x00]*$"  # free text in a query: anything but NUL, which no database stores


def iso(value: datetime | None) -> str | None:
    """An instant as ISO-8601 UTC with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Model(BaseModel):
    """Instants come from the store in UTC; pydantic writes those with a Z."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- errors


class ErrorDetail(Model):
    code: str = Field(description="Stable, for programs: job_not_found, invalid_spec, …")
    message: str = Field(description="For people")
    field: str | None = Field(description="The field at fault, when there is one")


class ErrorOut(Model):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: its error statuses, each with the error shape."""
    text = {
        401: "No token, or not a valid one (`unauthorized`)",
        403: "The token's scope does not allow this (`forbidden`)",
        404: "No such job, run or artifact",
        409: "The operation contradicts the current state",
        422: "Invalid request or definition (`invalid_request`, `invalid_spec`)",
    }
    return {s: {"model": ErrorOut, "description": text[s]} for s in (401, 403, 422, *statuses)}


# --------------------------------------------------------------------------- jobs


class Schedule(Model):
    kind: str = Field(description="cron, every, at or schedule")
    expr: str
    tz: str
    description: str | None = Field(description='In English: "At 03:00, UTC"')
    readable: str | None = Field(description='The readable form, if any: "daily at 03:00"')


class RunBrief(Model):
    id: int
    state: str
    finished_at: datetime | None
    duration: float | None


class JobOut(Model):
    id: str
    kind: str = Field(description="command, http, python or workflow")
    paused: bool
    broken: str | None = Field(description="Why the stored definition cannot run, if it cannot")
    next_fire_at: datetime | None
    schedule: Schedule | None
    description: str
    tags: list[str]
    definition: dict[str, Any] = Field(description="What POST /api/v1/jobs accepts")
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    paused_at: datetime | None
    last_run: RunBrief | None = None
    success_rate: float | None = None


class JobList(Model):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page, or null")


class DeleteOut(Model):
    id: str
    deleted: bool
    cancelled_runs: list[int] = Field(description="Runs in progress asked to stop")


class TriggerIn(Model):
    payload: Any = Field(default=None, description="Handed to the run (CLOCKTOWER_PAYLOAD)")
    env: dict[str, str] | None = Field(default=None, description="Extra environment variables")


class BackfillIn(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: datetime = Field(alias="from", description="First fire time to include")
    end: datetime = Field(alias="to", description="Last fire time to include")


class Preview(Model):
    job_id: str
    schedule: Schedule | None
    fire_times: list[datetime]


# --------------------------------------------------------------------------- runs


class Progress(Model):
    done: float
    total: float | None
    percent: float | None


class RunOut(Model):
    id: int
    job_id: str
    state: str
    trigger: str = Field(description="schedule, manual, retry, backfill or dependency")
    attempt: int
    retry_of: int | None
    scheduled_for: datetime = Field(description="The fire time the run serves")
    due_at: datetime | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    node: str | None
    exit_code: int | None
    http_status: int | None
    error: str | None
    progress: Progress | None
    payload: Any
    env_keys: list[str] = Field(description="Names of the environment overrides (values hidden)")
    result: Any
    missed_count: int | None
    missed_until: datetime | None
    output_bytes: int
    idempotency_key: str


class RunList(Model):
    runs: list[RunOut]
    next_before: int | None = Field(description="Pass as `before` for the next page, or null")


class BackfillOut(Model):
    count: int
    runs: list[RunOut]


class OutputLine(Model):
    at: str = Field(description="ISO-8601 UTC")
    stream: str = Field(description="stdout or stderr")
    text: str


class OutputChunkOut(Model):
    id: int
    part: str = Field(description="head or tail (the tail keeps the newest output)")
    lines: list[OutputLine]


class OutputOut(Model):
    run_id: int
    state: str
    chunks: list[OutputChunkOut]
    dropped_bytes: int = Field(description="Bytes cut between the head and the tail")
    next_after: int = Field(description="Pass as `after` to read only newer output")
    done: bool = Field(description="True when the run has ended: no more output will come")


class ArtifactOut(Model):
    name: str
    size: int
    url: str


class ArtifactList(Model):
    artifacts: list[ArtifactOut]


# --------------------------------------------------------------------------- misc


class NodeOut(Model):
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


class NodeList(Model):
    nodes: list[NodeOut]


class EventOut(Model):
    id: int
    at: datetime
    actor: str
    action: str
    job_id: str | None
    run_id: int | None
    detail: Any


class EventList(Model):
    events: list[EventOut]


class WhoAmI(Model):
    name: str
    scope: Scope
    anonymous: bool


# --------------------------------------------------------------------------- conversions


def _date_tuple(values: Any) -> tuple[date, ...]:
    return tuple(date.fromisoformat(v) for v in values or ())


@functools.lru_cache(maxsize=20_000)
def _describe(
    kind: str, expr: str, tz: str, start: str | None, end: str | None, exclude: tuple[str, ...]
) -> tuple[str | None, str | None]:
    spec = TriggerSpec(
        kind=kind,  # type: ignore[arg-type]
        expr=expr,
        tz=tz,
        start=datetime.fromisoformat(start) if start else None,
        end=datetime.fromisoformat(end) if end else None,
        exclude=_date_tuple(exclude),
    )
    try:
        trigger = compile_trigger(spec)
    except (InvalidSpec, ValueError):
        return None, None
    return trigger.describe(), readable_form(trigger)


def schedule_of(definition: dict[str, Any]) -> Schedule | None:
    """The schedule of a stored definition, described (cached per definition)."""
    kind = next((k for k in ("cron", "every", "at", "schedule") if k in definition), None)
    if kind is None:
        return None
    expr, tz = str(definition[kind]), str(definition.get("tz", "UTC"))
    exclude = tuple(str(d) for d in definition.get("exclude", ()))
    text, readable = _describe(
        kind, expr, tz, definition.get("start"), definition.get("end"), exclude
    )
    return Schedule(kind=kind, expr=expr, tz=tz, description=text, readable=readable)


def job_out(row: JobRow, outcomes: list[Outcome] | None = None) -> JobOut:
    definition = dict(row.spec)
    out = JobOut(
        id=row.id,
        kind=row.kind,
        paused=row.paused,
        broken=row.broken,
        next_fire_at=row.next_fire_at,
        schedule=schedule_of(definition),
        description=str(definition.get("description", "")),
        tags=[str(t) for t in definition.get("tags", ())],
        definition=definition,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        paused_at=row.paused_at,
    )
    if outcomes:
        last = outcomes[0]
        out.last_run = RunBrief(
            id=last.id, state=str(last.state), finished_at=last.finished_at, duration=last.duration
        )
        out.success_rate = success_rate(outcomes)
    return out


def job_row(job: Job) -> JobRow:
    """A parsed job as the listing shape."""
    return JobRow(
        id=job.id,
        spec=job_to_mapping(job.spec),
        kind=job.spec.target.kind,
        paused=job.paused,
        broken=job.broken,
        next_fire_at=job.next_fire_at,
        version=job.version,
        created_at=job.created_at or datetime.min.replace(tzinfo=UTC),
        updated_at=job.updated_at or datetime.min.replace(tzinfo=UTC),
        paused_at=job.paused_at,
    )


def success_rate(outcomes: list[Outcome]) -> float | None:
    """Succeeded / ran, leaving out skipped and missed records."""
    ran = [o for o in outcomes if o.state not in ("skipped", "missed")]
    if not ran:
        return None
    return sum(o.state == "succeeded" for o in ran) / len(ran)


def progress_of(run: Run) -> Progress | None:
    if run.progress_done is None:
        return None
    total = run.progress_total
    percent = None
    if total:
        percent = max(0.0, min(100.0, 100.0 * run.progress_done / total))
    return Progress.model_construct(done=run.progress_done, total=total, percent=percent)


def run_out(run: Run) -> RunOut:
    # model_construct: the values come from the store, already typed as the
    # schema says, and validating them again cost more than reading them.
    return RunOut.model_construct(
        id=run.id,
        job_id=run.job_id,
        state=str(run.state),
        trigger=str(run.trigger),
        attempt=run.attempt,
        retry_of=run.retry_of,
        scheduled_for=run.scheduled_for,
        due_at=run.due_at,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration=run.duration,
        node=run.node,
        exit_code=run.exit_code,
        http_status=run.http_status,
        error=run.error,
        progress=progress_of(run),
        payload=run.payload,
        env_keys=sorted(run.env),
        result=run.result,
        missed_count=run.missed_count,
        missed_until=run.missed_until,
        output_bytes=run.output_bytes,
        idempotency_key=run.idempotency_key,
    )


def definition_schema() -> dict[str, Any]:
    """The OpenAPI schema of a job definition: its keys, checked by Clocktower itself."""
    text = {"type": "string"}
    typed: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9_.-]{0,126}[a-z0-9])?$"},
        "command": text,
        "url": text,
        "call": text,
        "cron": text,
        "every": {"oneOf": [text, {"type": "number"}]},
        "at": text,
        "schedule": text,
        "tz": text,
        "description": text,
        "tags": {"type": "array", "items": text},
        "paused": {"type": "boolean"},
    }
    properties = {key: typed.get(key, {}) for key in sorted(JOB_KEYS)}
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "description": "A job definition: the keys of a [jobs.<id>] table in clocktower.toml "
        "(see docs/configuration.md); `id` is the job's id.",
        "example": {
            "id": "campaign-42",
            "url": "https://app.example/send/42",
            "at": "2030-01-01T09:00:00Z",
        },
    }
