"""Clocktower inside an application: `Clocktower(store_url)`.

    ct = Clocktower("postgresql+psycopg://app@db/app")

    @ct.job("cleanup", schedule="daily at 03:00")
    def cleanup(ctx): ...

    ct.schedule_once("campaign-42", at=when, call="app.campaigns:send", args=[42])
    ct.cancel("campaign-42")
    ct.start()        # a node in a background thread; or run the server separately

Any number of processes embedding Clocktower against one store behave as
nodes of one cluster: still one run per fire time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from clocktower.model import InvalidSpec, Job, Run, RunState
from clocktower.node import NodeOptions, open_store, serve
from clocktower.service import Service

F = TypeVar("F", bound=Callable[..., Any])

ACTOR = "python"


class Clocktower:
    def __init__(
        self,
        store_url: str = "sqlite:///clocktower.db",
        *,
        timezone: str = "UTC",
        node_id: str | None = None,
        max_concurrent_runs: int | None = None,
    ) -> None:
        self.store = open_store(store_url)
        self.service = Service(self.store, default_tz=timezone)
        self.options = NodeOptions(
            database=store_url,
            node_id=node_id or f"{socket.gethostname()}-{os.getpid()}-embedded",
            timezone=timezone,
            max_concurrent_runs=max_concurrent_runs or 4 * (os.cpu_count() or 1),
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ jobs

    def job(self, job_id: str | None = None, **definition: Any) -> Callable[[F], F]:
        """Register a module-level function as a job (created or updated now)."""

        def register(func: F) -> F:
            call = reference(func)
            self.service.create_job(
                {"call": call, **definition},
                job_id=job_id or func.__name__.replace("_", "-"),
                actor=ACTOR,
                source="python",
                replace=True,
            )
            return func

        return register

    def schedule_once(
        self,
        job_id: str,
        *,
        at: datetime | str,
        call: str | Callable[..., Any] | None = None,
        command: str | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **policies: Any,
    ) -> Job:
        """Run something once at `at`. Calling it again with the same id
        reschedules (or changes) it."""
        if callable(call):
            call = reference(call)
        target: dict[str, Any] = {"command": command} if command else {"call": call}
        if call and args:
            target["args"] = list(args)
        if call and kwargs:
            target["kwargs"] = dict(kwargs)
        when = at.astimezone(UTC).isoformat() if isinstance(at, datetime) else at
        job, _ = self.service.create_job(
            {**target, "at": when, **policies},
            job_id=job_id,
            actor=ACTOR,
            source="python",
            replace=True,
        )
        return job

    def reschedule(self, job_id: str, at: datetime | str) -> Job:
        when = at.astimezone(UTC).isoformat() if isinstance(at, datetime) else at
        return self.service.update_job(job_id, {"at": when}, actor=ACTOR)

    def cancel(self, job_id: str) -> None:
        """Delete a job: it will not fire again; a run in progress is cancelled."""
        self.service.delete_job(job_id, actor=ACTOR)

    def trigger(self, job_id: str, *, payload: Any = None) -> Run:
        return self.service.trigger_now(job_id, actor=ACTOR, payload=payload)

    def status(self, job_id: str) -> str:
        """scheduled, pending, running, succeeded, failed, …, or cancelled for a
        deleted job that never ran to the end."""
        job = self.store.get_job(job_id, include_deleted=True)
        runs = self.store.list_runs(job_id=job_id, limit=1)
        deleted = self.store.find_job(job_id) is None
        if runs and not (deleted and not runs[0].state.final):
            return str(runs[0].state)
        if deleted:
            return str(RunState.CANCELLED)
        return "paused" if job.paused else str(RunState.SCHEDULED)

    def runs(self, job_id: str, limit: int = 20) -> list[Run]:
        return self.store.list_runs(job_id=job_id, limit=limit)

    # ------------------------------------------------------------------ node

    def start(self) -> None:
        """Run a node in a background thread (daemon) until `stop()`."""
        if self._thread is not None:
            return
        ready = threading.Event()

        def main() -> None:
            async def run() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                ready.set()
                await serve(self.options, stop=self._stop, handle_signals=False)

            asyncio.run(run())

        self._thread = threading.Thread(target=main, name="clocktower-node", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self, timeout: float = 60) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None

    def run_forever(self) -> None:
        """Run a node in this thread until SIGTERM/SIGINT."""
        asyncio.run(serve(self.options))

    def close(self) -> None:
        self.stop()
        self.store.close()


def reference(func: Callable[..., Any]) -> str:
    """ "module:function" for a module-level function the scheduler can import."""
    if func.__module__ == "__main__":
        raise InvalidSpec(
            f"{func.__qualname__} is defined in the script being run (__main__), which "
            "the scheduler cannot import; pass call='module:function' instead",
            field="call",
        )
    if "<locals>" in func.__qualname__:
        raise InvalidSpec(f"{func.__qualname__} is not a module-level function", field="call")
    return f"{func.__module__}:{func.__qualname__}"
