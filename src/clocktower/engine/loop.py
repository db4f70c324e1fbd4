"""The loop: a dumb driver around the engine's units of work.

It sleeps until the next thing it has to do, or until a change wakes it
(PostgreSQL LISTEN/NOTIFY; on SQLite, `PRAGMA data_version` read twice a
second on one connection). Every background task is named; if one dies, the
node says so and stops rather than limping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from clocktower import __version__
from clocktower.engine.engine import Engine
from clocktower.store import NodeInfo

log = logging.getLogger("clocktower.loop")


@dataclass(frozen=True, slots=True)
class LoopSettings:
    idle_cap: float = 30.0  # longest sleep without a known reason to wake
    heartbeat_every: float = 10.0
    prune_every: float = 3600.0
    retention_runs: int = 1000
    retention_days: float = 30.0
    watch_interval: float = 0.5  # SQLite change detection


class Loop:
    def __init__(self, engine: Engine, settings: LoopSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or LoopSettings()
        self.wake = asyncio.Event()
        self.stopping = False
        self.started_at = engine.clock()
        self.last_tick: datetime | None = None
        self.ticks = 0
        self._aloop = asyncio.get_running_loop()
        self._stop_watch = threading.Event()
        engine.on_change = self.poke

    def poke(self) -> None:
        """Wake the loop; safe from any thread."""
        self._aloop.call_soon_threadsafe(self.wake.set)

    # ------------------------------------------------------------------ one tick

    async def tick(self) -> float:
        """Do everything that is due now; return how long to sleep."""
        engine = self.engine
        while await asyncio.to_thread(engine.fire_due):
            pass
        await asyncio.to_thread(engine.expire_leases)
        await asyncio.to_thread(engine.apply_cancel_requests)
        await engine.claim_and_start()
        wake_at = await asyncio.to_thread(engine.next_wakeup)
        now = engine.clock()
        self.last_tick = now
        self.ticks += 1
        if wake_at is None:
            return self.settings.idle_cap
        return min(max((wake_at - now).total_seconds(), 0.0), self.settings.idle_cap)

    async def run(self) -> None:
        """Run until `stop()`; raises if a background task dies."""
        await asyncio.to_thread(self._heartbeat)
        background = [
            asyncio.create_task(
                self._every(self.engine.settings.lease / 3, self._renew), name="leases"
            ),
            asyncio.create_task(
                self._every(self.settings.heartbeat_every, self._heartbeat_async), name="heartbeat"
            ),
            asyncio.create_task(
                self._every(self.settings.prune_every, self._prune), name="retention"
            ),
            asyncio.create_task(self._watch(), name="change-watcher"),
        ]
        main = asyncio.create_task(self._main(), name="scheduler")
        try:
            done, _ = await asyncio.wait([main, *background], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not main and task.exception() is not None:
                    log.error("background task %r died; stopping", task.get_name())
                    raise RuntimeError(
                        f"background task {task.get_name()!r} died"
                    ) from task.exception()
                task.result()
        finally:
            self._stop_watch.set()
            for task in [main, *background]:
                task.cancel()
            await asyncio.gather(main, *background, return_exceptions=True)

    async def _main(self) -> None:
        while not self.stopping:
            self.wake.clear()
            delay = await self.tick()
            if delay > 0 and not self.wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)

    def stop(self) -> None:
        self.stopping = True
        self.poke()

    # ------------------------------------------------------------------ shutdown

    async def drain(self, grace: float) -> None:
        """Stop claiming, give back runs whose target has not begun, let running
        ones finish within `grace`, then interrupt them (recorded as failed, so
        the retry policy applies)."""
        engine = self.engine
        engine.accepting = False
        for run_id, execution in list(engine.executions.items()):
            # Waiting for its instant, or read ahead and waiting for a slot.
            if execution.started is None or execution.waiting:
                engine.cancel_local(run_id, "interrupted: node shutting down")
        tasks = [e.task for e in engine.executions.values() if e.task is not None]
        if tasks:
            log.info("waiting up to %ss for %d running run(s)", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for run_id in list(engine.executions):
                engine.cancel_local(run_id, "interrupted: node shutting down")
            if pending:
                await asyncio.wait(pending, timeout=60)
        with contextlib.suppress(TimeoutError):  # outcomes still being written
            await asyncio.wait_for(engine.writer.idle(), 60)
        await asyncio.to_thread(self._heartbeat, stopped=True)

    def interrupt_now(self) -> None:
        """Second signal: stop every run at once."""
        for run_id in list(self.engine.executions):
            self.engine.cancel_local(run_id, "interrupted: node shutting down")

    # ------------------------------------------------------------------ background

    async def _every(self, interval: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            await work()

    async def _renew(self) -> None:
        try:
            await asyncio.to_thread(self.engine.renew_leases)
            self.engine.accepting = not self.stopping
        except Exception:
            # Fail closed: a node that cannot renew stops starting work.
            log.exception("cannot renew leases; not starting new runs until the store answers")
            self.engine.accepting = False

    def _heartbeat(self, *, stopped: bool = False) -> None:
        now = self.engine.clock()
        self.engine.store.heartbeat(
            NodeInfo(
                id=self.engine.node,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=__version__,
                started_at=self.started_at,
                heartbeat_at=now,
                stopped_at=now if stopped else None,
            )
        )

    async def _heartbeat_async(self) -> None:
        try:
            await asyncio.to_thread(self._heartbeat)
        except Exception:
            log.exception("heartbeat failed")

    async def _prune(self) -> None:
        s = self.settings
        removed = await asyncio.to_thread(
            self.engine.store.prune,
            now=self.engine.clock(),
            keep_runs=s.retention_runs,
            keep_days=s.retention_days,
        )
        if removed:
            log.info("retention: removed %d old runs", removed)

    async def _watch(self) -> None:
        db = self.engine.store.db
        if db.caps.notify:
            await asyncio.to_thread(self._listen_postgres, db.url)
        elif db.caps.data_version:
            await self._watch_sqlite()

    async def _watch_sqlite(self) -> None:
        # The store's own change stamp: its connection is closed under a lock,
        # so a read still running in a thread when this task is cancelled
        # cannot meet a connection being closed under it.
        db = self.engine.store.db
        version = None
        while True:
            current = await asyncio.to_thread(db.change_stamp)
            if current is None:  # the store is closed
                return
            if version is not None and current != version:
                self.wake.set()
            version = current
            await asyncio.sleep(self.settings.watch_interval)

    def _listen_postgres(self, url: str) -> None:
        import psycopg

        from clocktower.store.db import NOTIFY_CHANNEL

        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while not self._stop_watch.is_set():
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    self.poke()
