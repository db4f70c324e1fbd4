"""/api/v1/runs: list with filters and a cursor, read, cancel, output (range
reads and a live stream), artifacts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from clocktower.api.auth import Operator, Reader
from clocktower.api.context import cached_json, get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.schemas import (
    TEXT,
    ArtifactList,
    ArtifactOut,
    OutputOut,
    RunList,
    RunOut,
    errors,
    run_out,
)
from clocktower.api.stream import artifact_response, chunk_out, output_text, stream_response
from clocktower.model import RunState, TriggerKind

router = APIRouter(prefix="/runs", tags=["runs"])

RunId = Annotated[int, Path(description="The run's id", ge=1, le=2**62)]
STATES = ", ".join(s.value for s in RunState)
JOB_HELP = "Runs of this job"


def parse_states(values: list[str] | None) -> list[RunState]:
    """`state=failed&state=lost` or `state=failed,lost`."""
    states = []
    for value in values or []:
        for name in filter(None, (v.strip() for v in value.split(","))):
            try:
                states.append(RunState(name))
            except ValueError:
                raise ApiError(
                    "invalid_request", f"unknown state {name!r}: use {STATES}", field="state"
                ) from None
    return states


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("", response_model=RunList, responses=errors(), summary="List runs, newest first")
async def list_runs(
    request: Request,
    _: Reader,
    job: Annotated[
        str | None, Query(description="Runs of this job", max_length=128, pattern=TEXT)
    ] = None,
    state: Annotated[list[str] | None, Query(description=f"One or more of: {STATES}")] = None,
    trigger: Annotated[TriggerKind | None, Query(description="Why the run exists")] = None,
    since: Annotated[datetime | None, Query(description="Fire time at or after (UTC)")] = None,
    until: Annotated[datetime | None, Query(description="Fire time at or before (UTC)")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Cursor: ids below")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    states = parse_states(state)

    def build() -> RunList:
        runs = get_ctx(request).store.list_runs(
            job_id=job,
            states=states,
            trigger=trigger,
            since=_utc(since),
            until=_utc(until),
            before_id=before,
            limit=limit,
        )
        following = runs[-1].id if len(runs) == limit else None
        return RunList.model_construct(runs=[run_out(r) for r in runs], next_before=following)

    return await cached_json(request, build, runs_of=job)


@router.get("/{run_id}", response_model=RunOut, responses=errors(404), summary="Get a run")
async def get_run(request: Request, run_id: RunId, _: Reader) -> Response:
    return await cached_json(request, lambda: run_out(get_ctx(request).service.get_run(run_id)))


@router.post("/{run_id}/cancel", response_model=RunOut, responses=errors(404), summary="Cancel")
def cancel(request: Request, run_id: RunId, principal: Operator) -> RunOut:
    """Cancel a waiting run at once, or ask a running one to stop (its node
    records it `cancelled` when the target has stopped). A run that has ended
    is answered as it is."""
    return run_out(get_ctx(request).service.cancel(run_id, actor=principal.name))


@router.get(
    "/{run_id}/output",
    response_model=OutputOut,
    responses={**errors(404), 200: {"content": {"text/plain": {}}}},
    summary="Read a run's output",
)
def output(
    request: Request,
    run_id: RunId,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only chunks after this id")] = 0,
    format: Annotated[Literal["json", "text"], Query(description="json or text")] = "json",
) -> OutputOut | Response:
    ctx = get_ctx(request)
    run = ctx.service.get_run(run_id)
    chunks, dropped = ctx.store.read_output(run_id, after=after)
    if format == "text":
        return PlainTextResponse(output_text(chunks, dropped))
    return OutputOut(
        run_id=run_id,
        state=str(run.state),
        chunks=[chunk_out(c) for c in chunks],
        dropped_bytes=dropped,
        next_after=chunks[-1].id if chunks else after,
        done=run.state.final,
    )


@router.get(
    "/{run_id}/output/stream",
    responses={**errors(404), 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
    summary="Follow a run's output live (Server-Sent Events)",
)
def output_stream(
    request: Request,
    run_id: RunId,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=2**62, description="Resume after this chunk id")] = 0,
) -> StreamingResponse:
    last_seen = request.headers.get("last-event-id", "")
    if last_seen.isdigit():
        after = max(after, int(last_seen))
    return stream_response(get_ctx(request), run_id, after)


@router.get(
    "/{run_id}/artifacts", response_model=ArtifactList, responses=errors(404), summary="Artifacts"
)
def artifacts(request: Request, run_id: RunId, _: Reader) -> ArtifactList:
    ctx = get_ctx(request)
    ctx.service.get_run(run_id)
    return ArtifactList(
        artifacts=[
            ArtifactOut(name=name, size=size, url=f"/api/v1/runs/{run_id}/artifacts/{quote(name)}")
            for name, size in ctx.store.list_artifacts(run_id)
        ]
    )


@router.get(
    "/{run_id}/artifacts/{name:path}",
    responses={**errors(404), 200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
    summary="Download an artifact",
)
def artifact(request: Request, run_id: RunId, name: str, _: Reader) -> Response:
    return artifact_response(get_ctx(request), run_id, name)
