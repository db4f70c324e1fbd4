"""The dashboard's pages: Jobs, Job, Run, Now and Health, the status endpoint
that refreshes their live parts, and the run's live output stream."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from clocktower.api.auth import Principal, known_principal
from clocktower.api.context import AppContext, get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.health import readiness
from clocktower.api.schemas import job_out, job_row
from clocktower.api.stream import artifact_response, stream_response
from clocktower.model import InvalidSpec, Run, RunNotFound, RunState
from clocktower.triggers.localtime import load_zone
from clocktower.web.calendar import build_week
from clocktower.web.listing import (
    PAGE_SIZE,
    JobFilters,
    job_filters,
    jobs_page_html,
    jobs_rows,
    page_context,
)
from clocktower.web.render import finish, fragments, render
from clocktower.web.session import FLASH_COOKIE, SESSION_COOKIE, read_session, web_principal

router = APIRouter(include_in_schema=False)


def viewer(request: Request) -> Principal:
    principal = web_principal(request)
    if principal is None:
        raise ApiError("unauthorized", "log in to see the dashboard")
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


async def quick_viewer(request: Request) -> Principal:
    """`viewer`, answered from memory when the session's token was looked up
    since the store last changed (the busy pages use it)."""
    ctx = get_ctx(request)
    digest = read_session(ctx, request.cookies.get(SESSION_COOKIE))
    principal = known_principal(ctx, digest) if digest else None
    if principal is None:
        principal = await ctx.read(lambda: viewer(request))
    return principal


QuickViewer = Annotated[Principal, Depends(quick_viewer)]


# --------------------------------------------------------------------------- jobs


@router.get("/")
async def jobs_page(
    request: Request, me: QuickViewer, f: Annotated[JobFilters, Depends(job_filters)]
) -> Response:
    if request.cookies.get(FLASH_COOKIE):  # a message for this viewer: not shared
        rows, total, shown = await jobs_rows(request, me, f)
        return render(request, "jobs.html", me, page_context(request, rows, total, shown, f))
    return finish(request, HTMLResponse(await jobs_page_html(request, me, f)))


# --------------------------------------------------------------------------- job


@router.get("/jobs/{job_id}")
def job_page(
    request: Request,
    job_id: str,
    me: Viewer,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    ctx = get_ctx(request)
    job = ctx.service.get_job(job_id)
    try:
        upcoming = ctx.service.preview(job_id, count=10)
    except InvalidSpec:
        upcoming = []
    runs = ctx.store.list_runs(job_id=job_id, before_id=before, limit=PAGE_SIZE)
    row = job_row(job)
    context = {
        "job": job,
        "out": job_out(row, ctx.store.recent_outcomes([job_id]).get(job_id)),
        "zone": _zone(job.spec.trigger.tz if job.spec.trigger else "UTC"),
        "upcoming": upcoming,
        "runs": runs,
        "next_before": runs[-1].id if len(runs) == PAGE_SIZE else None,
        "records": ctx.store.job_records(job_id, [RunState.MISSED, RunState.SKIPPED]),
        "events": ctx.store.list_events(job_id=job_id, limit=20),
        "definition": json.dumps(row.spec, indent=2, sort_keys=False, default=str),
    }
    return render(request, "job.html", me, context)


def _zone(name: str) -> ZoneInfo:
    try:
        return load_zone(name)
    except (InvalidSpec, ValueError):
        return ZoneInfo("UTC")


# --------------------------------------------------------------------------- run


def attempt_chain(ctx: AppContext, run: Run) -> list[Run]:
    """Every attempt of the run's fire time, first to last."""
    chain = [run]
    while chain[0].retry_of is not None and len(chain) < 50:
        try:
            chain.insert(0, ctx.store.get_run(chain[0].retry_of))
        except RunNotFound:
            break
    while len(chain) < 100 and (later := ctx.store.retries_of(chain[-1].id)):
        chain.append(later[0])
    return chain


def run_context(ctx: AppContext, run_id: int) -> dict[str, Any]:
    run = ctx.service.get_run(run_id)
    job = ctx.store.jobs_by_ids([run.job_id]).get(run.job_id)
    timeout = job.spec.policies.timeout if job else None
    elapsed = None
    if run.started_at is not None:
        elapsed = ((run.finished_at or ctx.now()) - run.started_at).total_seconds()
    return {
        "run": run,
        "job": job,
        "timeout": timeout,
        "elapsed": elapsed,
        "cancel_asked": ctx.store.cancel_pending(run_id) and not run.state.final,
    }


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: int, me: Viewer) -> Response:
    ctx = get_ctx(request)
    context = run_context(ctx, run_id)
    chunks, dropped = ctx.store.read_output(run_id)
    context |= {
        "chain": attempt_chain(ctx, context["run"]),
        "chunks": chunks,
        "dropped": dropped,
        "after": chunks[-1].id if chunks else 0,
        "artifacts": ctx.store.list_artifacts(run_id),
        "status_url": f"/status/run/{run_id}",
    }
    return render(request, "run.html", me, context)


@router.get("/runs/{run_id}/stream")
def run_stream(request: Request, run_id: int, me: Viewer, after: int = 0) -> StreamingResponse:
    last_seen = request.headers.get("last-event-id", "")
    if last_seen.isdigit():
        after = max(after, int(last_seen))
    return stream_response(get_ctx(request), run_id, after)


@router.get("/runs/{run_id}/artifacts/{name:path}")
def run_artifact(request: Request, run_id: int, name: str, me: Viewer) -> Response:
    return artifact_response(get_ctx(request), run_id, name)


# --------------------------------------------------------------------------- now


def now_context(ctx: AppContext) -> dict[str, Any]:
    active = ctx.store.active_runs()
    jobs = ctx.store.jobs_by_ids([r.job_id for r in active])
    now = ctx.now()
    rows = []
    for run in active:
        job = jobs.get(run.job_id)
        elapsed = (now - run.started_at).total_seconds() if run.started_at else None
        rows.append(
            {"run": run, "timeout": job.spec.policies.timeout if job else None, "elapsed": elapsed}
        )
    return {"active": rows}


@router.get("/now")
def now_page(
    request: Request, me: Viewer, tz: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    ctx = get_ctx(request)
    zone = _zone(tz or ctx.service.default_tz)
    week = build_week(ctx.service, ctx.now(), zone)
    context = {**now_context(ctx), "week": week, "status_url": "/status/now"}
    return render(request, "now.html", me, context)


# --------------------------------------------------------------------------- health


async def health_context(request: Request) -> dict[str, Any]:
    ctx = get_ctx(request)
    ready, report = await readiness(ctx, request.app.state.probe)
    nodes = []
    if report["store"]["status"] == "ok":
        nodes = await asyncio.to_thread(ctx.store.list_nodes)
    return {"ready": ready, "report": report, "nodes": nodes}


@router.get("/health")
async def health_page(request: Request) -> Response:
    me = await asyncio.to_thread(viewer, request)
    context = await health_context(request) | {"status_url": "/status/health"}
    return render(request, "health.html", me, context)


# --------------------------------------------------------------------------- live parts


@router.get("/status/jobs")
async def status_jobs(
    request: Request, me: QuickViewer, f: Annotated[JobFilters, Depends(job_filters)]
) -> JSONResponse:
    rows, _, _ = await jobs_rows(request, me, f)
    return JSONResponse({"jobs-rows": rows})


@router.get("/status/now")
def status_now(request: Request, me: Viewer) -> JSONResponse:
    context = now_context(get_ctx(request))
    return JSONResponse(fragments(request, me, {"now-running": "_now_running.html"}, context))


@router.get("/status/run/{run_id}")
def status_run(request: Request, run_id: int, me: Viewer) -> JSONResponse:
    context = run_context(get_ctx(request), run_id) | {"here": f"/runs/{run_id}"}
    return JSONResponse(fragments(request, me, {"run-head": "_run_head.html"}, context))


@router.get("/status/health")
async def status_health(request: Request) -> JSONResponse:
    me = await asyncio.to_thread(viewer, request)
    context = await health_context(request)
    return JSONResponse(fragments(request, me, {"health-body": "_health_body.html"}, context))
