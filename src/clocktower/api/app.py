"""The web application: the REST API under /api/v1, health and metrics, and
the dashboard at /, all on one port."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from clocktower import __version__
from clocktower.api import errors, health, jobs, runs
from clocktower.api.context import CACHE_LAG, AppContext
from clocktower.engine import Loop
from clocktower.metrics import StoreMetrics
from clocktower.service import Service

DESCRIPTION = """Clocktower's REST API. Authenticate with `Authorization: Bearer <token>`
(`clocktower tokens create --scope read|operate|admin --name NAME`). Errors are
`{"error": {"code", "message", "field"}}` with stable codes. Instants are ISO-8601 UTC."""


def create_app(
    service: Service,
    loop: Loop | None = None,
    *,
    allow_anonymous: bool = False,
    session_secret: bytes | None = None,
    stream_interval: float = 0.5,
    ready_timeout: float = 2.0,
    dashboard: bool = True,
    cache: bool = True,
    cache_lag: float = CACHE_LAG,
    cache_clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The app for one node. `loop` is the scheduler loop running in this
    process, if any (readiness and metrics read it). `allow_anonymous` is for a
    loopback bind: while the store has no token at all, requests without one
    act as admin (see `clocktower.api.auth`). `cache` keeps hot reads in
    memory while the store is unchanged, or changed less than `cache_lag`
    seconds ago by others than this process (see `clocktower.api.cache`)."""
    ctx = AppContext(
        service=service,
        loop=loop,
        allow_anonymous=allow_anonymous,
        session_secret=session_secret or secrets.token_bytes(32),
        stream_interval=stream_interval,
        ready_timeout=ready_timeout,
        cache=cache,
        cache_lag=cache_lag,
        cache_clock=cache_clock,
    )
    ctx.metrics = StoreMetrics(service.store, clock=service.clock, loop=loop)
    probe = health.StoreProbe()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        confirming = asyncio.create_task(ctx.confirm_cached(), name="confirm-cached")
        try:
            yield
        finally:
            confirming.cancel()
            ctx.stopping.set()
            probe.close()

    app = FastAPI(
        title="Clocktower",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.probe = probe
    v1 = APIRouter(prefix="/api/v1")
    for router in (jobs.router, runs.router, health.api):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(health.router)
    if dashboard:
        from clocktower import web
        from clocktower.web.render import error_page

        web.mount(app)
        errors.install(app, page=error_page)
    else:
        errors.install(app)
    return app
