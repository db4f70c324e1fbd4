"""/api/v1/jobs: list, read, create (idempotent), replace, change, delete,
pause, resume, trigger, backfill and preview.

Every change goes through `Service` with the token's name as the actor, so it
is validated like the CLI's and the config file's, and written to the audit
trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response

from clocktower.api.auth import Admin, Operator, Reader, forbid_unless
from clocktower.api.context import cached_json, get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.schemas import (
    TEXT,
    BackfillIn,
    BackfillOut,
    DeleteOut,
    JobList,
    JobOut,
    Preview,
    RunOut,
    TriggerIn,
    definition_schema,
    errors,
    job_out,
    job_row,
    run_out,
    schedule_of,
)
from clocktower.model import Conflict, InvalidSpec, Job
from clocktower.store.views import JobSort, JobState

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[str, Path(description="The job's id", max_length=128)]
DEFINITION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": definition_schema()}},
    }
}
CODE_KINDS = ("command", "python")
TEXT_HELP = "Part of the id or a tag"
TAG_HELP = "Jobs with this tag"


Definition = Annotated[dict[str, Any], Body(description="The job's fields")]


def _full(request: Request, job: Job) -> JobOut:
    store = get_ctx(request).store
    outcomes = store.recent_outcomes([job.id]).get(job.id, [])
    return job_out(job_row(job), outcomes)


# --------------------------------------------------------------------------- reads


@router.get("", response_model=JobList, responses=errors(), summary="List jobs")
async def list_jobs(
    request: Request,
    _: Reader,
    text: Annotated[
        str | None, Query(max_length=200, pattern=TEXT, description="Part of the id or a tag")
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=200, pattern=TEXT, description="Jobs with this tag")
    ] = None,
    kind: Annotated[
        Literal["command", "http", "python", "workflow"] | None, Query(description="Target kind")
    ] = None,
    state: Annotated[JobState | None, Query(description="active, paused or broken")] = None,
    sort: Annotated[JobSort, Query(description="id, or next (next fire time)")] = "id",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    def build() -> JobList:
        rows, total = get_ctx(request).store.job_page(
            text=text, tag=tag, kind=kind, state=state, sort=sort, limit=limit, offset=offset
        )
        following = offset + len(rows)
        return JobList(
            jobs=[job_out(row) for row in rows],
            total=total,
            limit=limit,
            offset=offset,
            next_offset=following if following < total else None,
        )

    return await cached_json(request, build)


@router.get("/{job_id}", response_model=JobOut, responses=errors(404), summary="Get a job")
async def get_job(request: Request, job_id: JobId, _: Reader) -> Response:
    return await cached_json(
        request, lambda: _full(request, get_ctx(request).service.get_job(job_id))
    )


@router.get(
    "/{job_id}/preview",
    response_model=Preview,
    responses=errors(404),
    summary="The job's next fire times",
)
def preview(
    request: Request,
    job_id: JobId,
    _: Reader,
    count: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> Preview:
    service = get_ctx(request).service
    job = service.get_job(job_id)
    schedule = schedule_of(job_row(job).spec)
    return Preview(
        job_id=job_id, schedule=schedule, fire_times=service.preview(job_id, count=count)
    )


# --------------------------------------------------------------------------- definitions


@router.post(
    "",
    response_model=JobOut,
    status_code=201,
    responses={**errors(409), 200: {"model": JobOut, "description": "Already existed, same"}},
    openapi_extra=DEFINITION_BODY,
    summary="Create a job (idempotent by id)",
)
def create_job(request: Request, response: Response, data: Definition, principal: Admin) -> JobOut:
    """Create a job. The same id with the same definition answers 200 with the
    existing job; another definition answers 409 `job_exists` (use PUT)."""
    job_id = data.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise ApiError("invalid_spec", 'give the job\'s id ("id": "nightly-report")', field="id")
    service = get_ctx(request).service
    try:
        job, changed = service.create_job(data, job_id=job_id, actor=principal.name)
    except Conflict as exc:
        raise ApiError("job_exists", str(exc), field="id") from exc
    if not changed:
        response.status_code = 200
    return _full(request, job)


@router.put(
    "/{job_id}",
    response_model=JobOut,
    responses={**errors(), 201: {"model": JobOut, "description": "Created"}},
    openapi_extra=DEFINITION_BODY,
    summary="Create or replace a job",
)
def put_job(
    request: Request, response: Response, job_id: JobId, data: Definition, principal: Admin
) -> JobOut:
    """Replace the job's whole definition (reschedules a one-off job), or create it."""
    service = get_ctx(request).service
    existed = service.store.find_job(job_id) is not None
    job, _ = service.create_job(data, job_id=job_id, actor=principal.name, replace=True)
    if not existed:
        response.status_code = 201
    return _full(request, job)


@router.patch(
    "/{job_id}",
    response_model=JobOut,
    responses=errors(404),
    summary="Change some fields of a job",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "Fields to change; null removes a field",
                    }
                }
            },
        }
    },
)
def patch_job(request: Request, job_id: JobId, changes: Definition, principal: Admin) -> JobOut:
    job = get_ctx(request).service.update_job(job_id, changes, actor=principal.name)
    return _full(request, job)


@router.delete("/{job_id}", response_model=DeleteOut, responses=errors(404), summary="Delete a job")
def delete_job(request: Request, job_id: JobId, principal: Admin) -> DeleteOut:
    """Delete (cancel) a job: it will not fire again, waiting runs are
    cancelled and runs in progress asked to stop. Its history is kept."""
    active = get_ctx(request).service.delete_job(job_id, actor=principal.name)
    return DeleteOut(id=job_id, deleted=True, cancelled_runs=active)


# --------------------------------------------------------------------------- operations


@router.post("/{job_id}/pause", response_model=JobOut, responses=errors(404), summary="Pause")
def pause(request: Request, job_id: JobId, principal: Operator) -> JobOut:
    return _full(request, get_ctx(request).service.pause(job_id, actor=principal.name))


@router.post("/{job_id}/resume", response_model=JobOut, responses=errors(404), summary="Resume")
def resume(request: Request, job_id: JobId, principal: Operator) -> JobOut:
    return _full(request, get_ctx(request).service.resume(job_id, actor=principal.name))


@router.post(
    "/{job_id}/trigger",
    response_model=RunOut,
    status_code=202,
    responses=errors(404, 409),
    summary="Run the job now",
)
def trigger(
    request: Request,
    job_id: JobId,
    principal: Operator,
    body: Annotated[TriggerIn | None, Body()] = None,
) -> RunOut:
    """Start a manual run. 409 `trigger_refused` when the job's overlap policy
    forbids a run now (the reason says why). Environment overrides can change
    what a command or Python target runs, so they need the admin scope."""
    service = get_ctx(request).service
    body = body or TriggerIn()
    if body.env:
        job = service.get_job(job_id)
        if job.spec.target.kind in CODE_KINDS:
            forbid_unless(principal, "admin", "an environment override on a code-running job")
    try:
        run = service.trigger_now(job_id, actor=principal.name, payload=body.payload, env=body.env)
    except Conflict as exc:
        raise ApiError("trigger_refused", str(exc)) from exc
    return run_out(run)


@router.post(
    "/{job_id}/backfill",
    response_model=BackfillOut,
    status_code=202,
    responses=errors(404),
    summary="Run the job for each past fire time in a range",
)
def backfill(request: Request, job_id: JobId, body: BackfillIn, principal: Operator) -> BackfillOut:
    runs = get_ctx(request).service.backfill(
        job_id, _utc(body.start, "from"), _utc(body.end, "to"), actor=principal.name
    )
    return BackfillOut(count=len(runs), runs=[run_out(r) for r in runs])


def _utc(value: datetime, field: str) -> datetime:
    """Instants without a zone are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.utcoffset() is None:
        raise InvalidSpec("not a valid instant", field=field)
    return value.astimezone(UTC)
