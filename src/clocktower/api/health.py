"""/healthz, /readyz and /metrics, plus the small read-only routes of the API
(nodes, the audit trail, who am I).

`/healthz` says the process answers. `/readyz` says this node can do its work:
503 with the reason when the store does not answer within `ready_timeout`, when
the scheduler loop has not ticked within twice its longest sleep plus 30 s, or
while the node shuts down. Both are public (load balancers and orchestrators
call them without credentials); `/metrics` needs the read scope.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from clocktower.api.auth import Reader
from clocktower.api.context import AppContext, get_ctx
from clocktower.api.schemas import TEXT, EventList, EventOut, NodeList, NodeOut, WhoAmI, errors, iso
from clocktower.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])
api = APIRouter(tags=["system"])


class StoreProbe:
    """Checks the store on its own thread, one check at a time, so a database
    that hangs cannot take the threads the scheduler and the routes need."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="readyz")
        self._pending: concurrent.futures.Future[float] | None = None
        self._lock = threading.Lock()

    def _start(self, ctx: AppContext) -> concurrent.futures.Future[float]:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = self._pool.submit(_timed_probe, ctx)
            return self._pending

    async def check(self, ctx: AppContext) -> dict[str, Any]:
        future = self._start(ctx)
        try:
            seconds = await asyncio.wait_for(asyncio.wrap_future(future), ctx.ready_timeout)
        except TimeoutError:
            return {"status": "unreachable", "error": f"no answer within {ctx.ready_timeout}s"}
        except Exception as exc:
            return {"status": "unreachable", "error": _one_line(exc)}
        return {"status": "ok", "latency_ms": round(seconds * 1000, 2)}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _timed_probe(ctx: AppContext) -> float:
    start = time.perf_counter()
    ctx.store.probe()
    return time.perf_counter() - start


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def loop_report(ctx: AppContext) -> tuple[dict[str, Any], str | None]:
    """What the loop looks like, and why it counts as stalled, if it does."""
    loop, bound = ctx.loop, ctx.tick_bound()
    if loop is None or bound is None:
        return {"node": None, "last_tick": None, "tick_age_seconds": None}, None
    last = loop.last_tick or loop.started_at
    age = (ctx.now() - last).total_seconds()
    report = {
        "node": loop.engine.node,
        "last_tick": iso(loop.last_tick),
        "tick_age_seconds": round(age, 3),
        "tick_bound_seconds": bound.total_seconds(),
        "ticks": loop.ticks,
    }
    if age <= bound.total_seconds():
        return report, None
    never = "has not ticked since it started" if loop.last_tick is None else "has not ticked"
    return report, f"the scheduler loop {never} for {age:.0f}s (bound {bound.total_seconds():.0f}s)"


async def readiness(ctx: AppContext, probe: StoreProbe) -> tuple[bool, dict[str, Any]]:
    store = await probe.check(ctx)
    report, stalled = loop_report(ctx)
    reasons = []
    if store["status"] != "ok":
        reasons.append(f"store unreachable: {store['error']}")
    if stalled:
        reasons.append(stalled)
    if ctx.stopping.is_set() or (ctx.loop is not None and ctx.loop.stopping):
        reasons.append("the node is shutting down")
    ready = not reasons
    body = {
        "status": "ready" if ready else "unavailable",
        "reason": "; ".join(reasons) or None,
        **report,
        "store": store,
        "checked_at": iso(ctx.now()),
    }
    return ready, body


@router.get("/healthz", summary="The process answers", include_in_schema=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="This node can work: store reachable, loop ticking",
    responses={503: {"description": "Not ready; `reason` says why"}},
)
async def readyz(request: Request) -> JSONResponse:
    ready, body = await readiness(get_ctx(request), request.app.state.probe)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={**errors(), 200: {"content": {"text/plain": {}}}},
)
def metrics(request: Request, _: Reader) -> Response:
    collector = get_ctx(request).metrics
    body = collector.render() if collector is not None else b""
    return Response(body, media_type=CONTENT_TYPE)


# --------------------------------------------------------------------------- /api/v1


@api.get("/nodes", response_model=NodeList, responses=errors(), summary="Nodes and heartbeats")
def nodes(request: Request, _: Reader) -> NodeList:
    found = get_ctx(request).store.list_nodes()
    return NodeList(nodes=[NodeOut.model_validate(n, from_attributes=True) for n in found])


@api.get("/events", response_model=EventList, responses=errors(), summary="The audit trail")
def events(
    request: Request,
    _: Reader,
    job: Annotated[
        str | None, Query(max_length=128, pattern=TEXT, description="Events of this job")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:
    found = get_ctx(request).store.list_events(job_id=job, limit=limit)
    return EventList(events=[EventOut.model_validate(e, from_attributes=True) for e in found])


@api.get("/whoami", response_model=WhoAmI, responses=errors(), summary="The caller's token")
def whoami(principal: Reader) -> WhoAmI:
    return WhoAmI(name=principal.name, scope=principal.scope, anonymous=principal.anonymous)
