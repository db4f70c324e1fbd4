"""Drive the engine's units of work by hand, with an injected clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from clocktower.engine import Engine, EngineSettings
from clocktower.model import Run
from clocktower.service import Service
from clocktower.store import Store


def make_engine(
    store: Store, clock: Any, tmp_path: Path, node: str = "node-a", **kw: Any
) -> Engine:
    settings = EngineSettings(
        node_id=node, artifacts_dir=tmp_path / f"artifacts-{node}", lookahead=2.0, **kw
    )
    return Engine(store, settings, clock=clock)


def make_service(store: Store, clock: Any) -> Service:
    return Service(store, clock=clock)


async def step(engine: Engine, *, wait: bool = True) -> list[Run]:
    """One loop tick without sleeping: fire, expire, claim, start. With `wait`,
    also wait for the started runs to finish. Returns the runs claimed."""
    await asyncio.to_thread(engine.renew_leases)  # the loop does this every lease / 3
    while await asyncio.to_thread(engine.fire_due):
        pass
    await asyncio.to_thread(engine.expire_leases)
    await asyncio.to_thread(engine.apply_cancel_requests)
    claimed = await asyncio.to_thread(engine.claim)
    engine.start_claimed(claimed)
    if wait:
        await settle(engine)
    return claimed


async def settle(engine: Engine) -> None:
    """Wait for the runs this engine executes now, and for its writes."""
    tasks = [e.task for e in engine.executions.values() if e.task is not None]
    async with asyncio.timeout(60):
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await engine.writer.idle()


async def first_run_running(
    store: Store, clock: Any, tmp_path: Path, definition: dict[str, Any]
) -> tuple[Engine, Run]:
    """Job `slow` (every minute, `definition` its target and policies) with its
    first run running; the clock is then at the next fire time."""
    service = make_service(store, clock)
    service.create_job({"every": "1m", "kill_grace": "1s", **definition}, job_id="slow", actor="t")
    engine = make_engine(store, clock, tmp_path)
    clock.set(store.get_job("slow").next_fire_at)
    (first,) = await step(engine, wait=False)
    await until_running(engine, store, first.id)
    clock.advance(60)
    return engine, first


async def until_running(engine: Engine, store: Store, run_id: int) -> None:
    """Wait (bounded) until a run is recorded as running."""
    for _ in range(500):
        if store.get_run(run_id).state == "running":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} never started: {store.get_run(run_id)}")


def output_text(store: Store, run_id: int) -> str:
    chunks, _ = store.read_output(run_id)
    return "\n".join(text for c in chunks for _, _, text in c.lines)
