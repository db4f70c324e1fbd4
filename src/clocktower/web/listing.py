"""The jobs table, shared by the Jobs page and its live refresh.

It is the dashboard's busiest part (fifty jobs, a thousand sparkline bars), so
its rendered rows, and the whole Jobs page around them, are kept in memory
(see `clocktower.api.cache` for how long: what this server changed shows at
once, what others commit within a second), and rendered again after five
seconds because they say "in 5 min". They are rendered with a stand-in for
the viewer's CSRF token, put in afterwards, so viewers share them; each job's
latest outcomes and sparkline are kept while its runs are unchanged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from markupsafe import Markup

from clocktower.api.auth import Principal
from clocktower.api.context import AppContext, get_ctx
from clocktower.api.schemas import TEXT, schedule_of, success_rate
from clocktower.store.views import JobRow, JobSort, JobState, Outcome
from clocktower.web.present import sparkline
from clocktower.web.render import fragments, render_shared
from clocktower.web.session import csrf_token

PAGE_SIZE = 50
FRESH_FOR = 5  # seconds relative times ("in 5 min") may be kept
CSRF_STAND_IN = secrets.token_hex(16)


@dataclass(slots=True)
class JobItem:
    row: JobRow
    outcomes: list[Outcome]
    spark: str  # the sparkline of `outcomes`, as markup

    @property
    def schedule(self) -> Any:
        return schedule_of(self.row.spec)

    @property
    def last(self) -> Outcome | None:
        return self.outcomes[0] if self.outcomes else None

    @property
    def rate(self) -> float | None:
        return success_rate(self.outcomes)


@dataclass(slots=True)
class JobFilters:
    text: str | None = None
    tag: str | None = None
    kind: Literal["command", "http", "python", "workflow"] | None = None
    state: JobState | None = None
    sort: JobSort = "id"
    offset: int = 0


async def job_filters(  # async: FastAPI would run a plain function in a worker thread
    text: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    tag: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    kind: Literal["command", "http", "python", "workflow"] | None = None,
    state: JobState | None = None,
    sort: JobSort = "id",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobFilters:
    return JobFilters(text or None, tag or None, kind, state, sort, offset)


def page_path(request: Request, path: str) -> str:
    return path + (f"?{request.url.query}" if request.url.query else "")


async def jobs_rows(request: Request, me: Principal, f: JobFilters) -> tuple[str, int, int]:
    """The table's rows as HTML for this viewer, how many jobs match, how many
    shown: from memory when fresh, else rendered in a worker thread."""
    ctx = get_ctx(request)
    bucket = int(ctx.now().timestamp() // FRESH_FOR)
    key = ("jobs-rows", request.url.query, me.allows("operate"), bucket)
    found = ctx.rows.peek(key)
    if found is not None:
        html, total, shown = found[0]
    else:
        html, total, shown = await ctx.read(
            lambda: ctx.rows.get_or_build(key, lambda: _render_rows(request, me, f))
        )
    return html.replace(CSRF_STAND_IN, csrf_token(request)), total, shown


async def jobs_page_html(request: Request, me: Principal, f: JobFilters) -> bytes:
    """The whole Jobs page for this viewer (who is named on it): from memory
    while fresh, else rendered in a worker thread. A page
    older than `FRESH_FOR` is still answered while a new one is rendered in
    the background: only its relative times have aged."""
    ctx = get_ctx(request)
    key = ("jobs-page", request.url.query, me)
    found = ctx.pages.peek(key)
    if found is not None:
        chunks, built = found[0]
        aged = (ctx.now() - built).total_seconds() > FRESH_FOR
        if aged and ctx.pages.claim(key):  # one request renders it again, not each
            ctx.read_later(lambda: ctx.pages.refresh(key, lambda: _render_page(request, me, f)))
    else:
        chunks, _ = await ctx.read(
            lambda: ctx.pages.get_or_build(key, lambda: _render_page(request, me, f))
        )
    return csrf_token(request).encode().join(chunks)


def _render_page(
    request: Request, me: Principal, f: JobFilters
) -> tuple[tuple[bytes, ...], datetime]:
    """The page, cut where the viewer's CSRF token goes, and when it was built."""
    built = get_ctx(request).now()
    rows, total, shown = _render_rows(request, me, f)
    context = page_context(request, rows, total, shown, f) | {"csrf": CSRF_STAND_IN}
    html = render_shared(request, "jobs.html", me, context)
    return tuple(part.encode() for part in html.split(CSRF_STAND_IN)), built


def page_context(
    request: Request, rows: str, total: int, shown: int, f: JobFilters
) -> dict[str, Any]:
    """What jobs.html shows around the rows."""
    return {
        "rows_html": Markup(rows),
        "total": total,
        "shown": shown,
        "filters": f,
        "page_size": PAGE_SIZE,
        "here": page_path(request, "/"),
        "status_url": page_path(request, "/status/jobs"),
    }


def _render_rows(request: Request, me: Principal, f: JobFilters) -> tuple[str, int, int]:
    ctx = get_ctx(request)
    context = jobs_context(ctx, f) | {"here": page_path(request, "/"), "csrf": CSRF_STAND_IN}
    html = fragments(request, me, {"rows": "_jobs_rows.html"}, context)["rows"]
    return html, context["total"], len(context["items"])


def jobs_context(ctx: AppContext, f: JobFilters) -> dict[str, Any]:
    rows, total = ctx.store.job_page(
        text=f.text,
        tag=f.tag,
        kind=f.kind,
        state=f.state,
        sort=f.sort,
        limit=PAGE_SIZE,
        offset=f.offset,
    )
    histories = job_histories(ctx, [r.id for r in rows])
    items = [JobItem(row, *histories[row.id]) for row in rows]
    return {"items": items, "total": total, "filters": f, "page_size": PAGE_SIZE}


def job_histories(ctx: AppContext, ids: list[str]) -> dict[str, tuple[list[Outcome], str]]:
    """Each job's latest outcomes and their sparkline. Where answers are cached
    (see `clocktower.api.cache`) those of jobs whose runs did not change since
    are reused: after a run ends, one job's are read again, not fifty."""
    stamps = ctx.store.runs_stamps(ids) if ctx.rows.stamp() is not None else None
    found = ctx.histories.pick(stamps) if stamps is not None else {}
    missing = [job_id for job_id in ids if job_id not in found]
    if missing:
        for job_id, outcomes in ctx.store.recent_outcomes(missing).items():
            found[job_id] = (outcomes, sparkline(outcomes))
            if stamps is not None:
                ctx.histories.put(job_id, stamps[job_id], found[job_id])
    return found
