"""What the routes share: the service, the loop (when one runs in this
process), the auth settings and the metrics. One per app, in `app.state.ctx`."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request, Response
from pydantic import BaseModel

from clocktower.api.cache import ScopedMemo, StampedCache
from clocktower.engine import Loop
from clocktower.metrics import StoreMetrics
from clocktower.service import Service
from clocktower.store import Store, TokenInfo
from clocktower.store.views import Outcome

log = logging.getLogger("clocktower.api")

# How long a cached answer may lag what other processes and the scheduler's
# runs commit (this process's own changes through the service show at once).
CACHE_LAG = 1.0
READERS = max(4, 2 * (os.cpu_count() or 1))  # store reads in worker threads at once
T = TypeVar("T")


@dataclass(slots=True)
class AppContext:
    service: Service
    loop: Loop | None = None
    allow_anonymous: bool = False  # loopback bind: anonymous admin while no token exists
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    stream_interval: float = 0.5  # how often a live output stream reads the store
    ready_timeout: float = 2.0  # how long /readyz waits for the store
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: StoreMetrics | None = None
    cache: bool = True  # answer hot reads from memory while the store is unchanged
    cache_lag: float = CACHE_LAG  # seconds an answer may lag changes made elsewhere
    cache_clock: Callable[[], float] = time.monotonic  # what the lag is measured with
    bodies: StampedCache[bytes] = field(init=False)
    tokens: StampedCache[TokenInfo | None] = field(init=False)
    rows: StampedCache[tuple[str, int, int]] = field(init=False)
    # Whole pages, split where the viewer's CSRF token goes, and when built.
    pages: StampedCache[tuple[tuple[bytes, ...], datetime]] = field(init=False)
    # Each job's latest outcomes and their sparkline, while its runs are unchanged.
    histories: ScopedMemo[tuple[list[Outcome], str]] = field(default_factory=ScopedMemo)
    touched: dict[int, datetime] = field(default_factory=dict)  # token id -> use noted here
    _tokens_seen: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _readers: anyio.CapacityLimiter | None = None
    _later: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        store = self.service.store
        lagging = functools.partial(
            StampedCache[Any],
            store,
            enabled=self.cache,
            lag=self.cache_lag,
            changes=self.changes,
            clock=self.cache_clock,
        )
        self.bodies = lagging(size=2048, scope_stamps=store.runs_stamps)
        self.rows = lagging(size=256)
        self.pages = lagging(size=256)
        # A token revoked by `clocktower tokens revoke` is refused within the lag.
        self.tokens = lagging(size=1024)

    def changes(self) -> int:
        return self.service.changes

    @property
    def store(self) -> Store:
        return self.service.store

    async def read(self, build: Callable[[], T]) -> T:
        """Run `build` (a blocking read of the store: a cached answer being
        built, a token looked up) in a worker thread, at most `READERS` at a
        time. Reads hold the GIL for most of their time: forty threads at once
        (the default pool) only take turns and slow each other down; a few
        serve more requests per second."""
        if self._readers is None:  # made here: it belongs to the running event loop
            self._readers = anyio.CapacityLimiter(READERS)
        return await anyio.to_thread.run_sync(build, limiter=self._readers)

    def read_later(self, build: Callable[[], object]) -> None:
        """`read`, in the background: nobody waits for it."""

        async def run() -> None:
            try:
                await self.read(build)
            except Exception:
                log.exception("a background read failed")

        task = asyncio.get_running_loop().create_task(run())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def confirm_cached(self) -> None:
        """Keep the cached answers about one job's runs fresh while that job's
        runs are unchanged (see `StampedCache.confirm_scoped`), until cancelled."""
        if not self.cache or self.cache_lag <= 0:
            return
        while True:
            await asyncio.sleep(self.cache_lag / 2)
            try:
                await self.read(self.bodies.confirm_scoped)
            except Exception:  # the store is away: requests will say so
                log.debug("cannot confirm cached answers", exc_info=True)

    async def settled(self) -> None:
        """Wait for the background reads started so far."""
        while self._later:
            await asyncio.gather(*self._later, return_exceptions=True)

    def now(self) -> datetime:
        return self.service.clock()

    def anonymous_allowed(self) -> bool:
        """Anonymous requests act as admin only on a loopback bind of a store
        where no token was ever created. Tokens are never deleted (revoking
        keeps the row), so once one exists the answer stays no."""
        if not self.allow_anonymous:
            return False
        if self._tokens_seen:
            return False
        seen = self.store.has_tokens()
        with self._lock:
            self._tokens_seen = self._tokens_seen or seen
        return not seen

    def tick_bound(self) -> timedelta | None:
        """How old the loop's last tick may be before the node counts as stalled."""
        if self.loop is None:
            return None
        return timedelta(seconds=2 * self.loop.settings.idle_cap + 30)


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def cached_json(
    request: Request, build: Callable[[], BaseModel], *, runs_of: str | None = None
) -> Response:
    """A JSON answer built by `build` (in a worker thread), or the same bytes
    as last time, straight from memory, when the store has not changed since
    (the key is the path and the query). `runs_of`: the answer reads nothing
    but that job's runs, so it stays valid while they do (see `api.cache`)."""
    ctx = get_ctx(request)
    cache = ctx.bodies
    key = ("json", request.url.path, request.url.query)
    found = cache.peek(key)
    if found is not None:
        body = found[0]
    else:
        body = await ctx.read(
            lambda: cache.get_or_build(
                key, lambda: build().model_dump_json().encode(), scope=runs_of
            )
        )
    return Response(body, media_type="application/json")
