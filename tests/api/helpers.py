"""Shared by the API and dashboard tests: apps over a store, tokens, runs in
given states, and a whole node serving HTTP on a real port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from clocktower.api import create_app, serve_http
from clocktower.api.tokens import create_token
from clocktower.engine.policies import decide_start
from clocktower.model import Run, RunState, TriggerKind
from clocktower.node import NodeOptions, serve
from clocktower.service import Service
from clocktower.store import NewRun, RunResult, Store

BASE = "http://127.0.0.1"  # anonymous access needs a loopback host


@asynccontextmanager
async def client_for(app: FastAPI, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in process, with its lifespan run."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE, headers=headers, follow_redirects=False
        ) as client:
            yield client


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Tokens:
    read: dict[str, str]
    operate: dict[str, str]
    admin: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)

    def for_scope(self, scope: str) -> dict[str, str]:
        return dict(getattr(self, scope))


def make_tokens(store: Store) -> Tokens:
    made = {
        scope: create_token(store, f"{scope}-bot", scope) for scope in ("read", "operate", "admin")
    }
    return Tokens(
        read=bearer(made["read"].secret),
        operate=bearer(made["operate"].secret),
        admin=bearer(made["admin"].secret),
        secrets={scope: t.secret for scope, t in made.items()},
    )


# --------------------------------------------------------------------------- runs


def new_run(service: Service, job_id: str, *, at: datetime | None = None) -> Run:
    now = at or service.clock()
    (run,) = service.store.create_runs(
        [NewRun(job_id=job_id, scheduled_for=now, trigger=TriggerKind.MANUAL)], now=now
    )
    return run


def running_run(service: Service, job_id: str, *, node: str = "test-node") -> Run:
    """A run of the job that a node has started (it stays running)."""
    store, now = service.store, service.clock()
    run = new_run(service, job_id, at=now)
    lease = now + timedelta(hours=1)
    claimed = store.claim(node=node, horizon=now, limit=100, lease_until=lease)
    if run.id not in {c.id for c in claimed}:
        raise RuntimeError(f"run {run.id} was not claimed")
    started = store.start(run.id, node=node, now=now, lease_until=lease, decide=decide_start)
    if started is None or not started.started:
        raise RuntimeError(f"run {run.id} did not start")
    return started.run


def finished_run(
    service: Service, job_id: str, state: RunState = RunState.SUCCEEDED, *, took: float = 1.0
) -> Run:
    """A run that ran and ended in `state`, `took` seconds after it started."""
    run = running_run(service, job_id)
    end = service.clock() + timedelta(seconds=took)
    done = service.store.finish(
        run.id,
        node="test-node",
        outcome=RunResult(state, exit_code=0 if state is RunState.SUCCEEDED else 1),
        now=end,
    )
    if done is None:
        raise RuntimeError(f"run {run.id} could not finish")
    return done


def app_for(service: Service, **options: Any) -> FastAPI:
    options.setdefault("allow_anonymous", True)
    options.setdefault("stream_interval", 0.05)
    return create_app(service, **options)


# --------------------------------------------------------------------------- a whole node


@dataclass
class LiveNode:
    url: str
    service: Service
    stop: Any
    loop: asyncio.AbstractEventLoop

    @property
    def store(self) -> Store:
        return self.service.store


@contextmanager
def live_node(database: str, tmp: Path, node_id: str = "test-node") -> Iterator[LiveNode]:
    """A node (scheduler loop + HTTP on 127.0.0.1, any free port) in a thread."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = asyncio.Event()

        async def http(service: Service, loop: Any) -> None:
            box["service"] = service

            def on_ready(url: str) -> None:
                box["url"] = url
                ready.set()

            await serve_http(service, loop, host="127.0.0.1", port=0, on_ready=on_ready)

        options = NodeOptions(
            database=database, node_id=node_id, artifacts_dir=tmp / "artifacts", shutdown_grace=5
        )
        try:
            await serve(options, extra=http, stop=box["stop"], handle_signals=False)
        finally:
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="node", daemon=True)
    thread.start()
    if not ready.wait(30) or "url" not in box:
        raise RuntimeError("the node did not start")
    node = LiveNode(box["url"], box["service"], box["stop"], box["loop"])
    try:
        yield node
    finally:
        node.loop.call_soon_threadsafe(node.stop.set)
        thread.join(60)
        if thread.is_alive():
            raise RuntimeError("the node did not stop")
