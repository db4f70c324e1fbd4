"""What the routes share: the service, the loop (when one runs in this
process), the auth settings and the metrics. One per app, in `app.state.ctx`."""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import Request

from clocktower.engine import Loop
from clocktower.metrics import StoreMetrics
from clocktower.service import Service
from clocktower.store import Store


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
    _tokens_seen: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> Store:
        return self.service.store

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
