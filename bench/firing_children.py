"""The processes `bench/firing.py` measures, one peer per process.

    python bench/firing_children.py ROLE 'JSON PARAMETERS'

Each writes JSON lines on stdout: `{"event": "ready", ...}` once it is
scheduling, and `{"event": "result", ...}` when it measured something itself.

- `clocktower`: a Clocktower node (`clocktower.node.serve`) on an existing
  store, until SIGTERM. The parent seeds the store and reads the outcome from
  it; this process only says when its loop has ticked once, and how big it is.
- `clocktower-loop`: the same engine and loop without what `serve` does first
  (reconciling a config file, checking every job's Python target).
- `apscheduler`: APScheduler 3's AsyncIOScheduler with a MemoryJobStore or a
  SQLAlchemyJobStore on SQLite (WAL), running one scenario end to end.
- `spawn`: a bare `asyncio.create_subprocess_exec` loop, the floor for command jobs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def memory() -> dict[str, float]:
    """This process's resident set now and at its peak, in MiB. The peak is
    VmHWM, not ru_maxrss: the latter survives exec, so it would report the
    parent's size at fork."""
    peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return {"rss_mib": psutil.Process().memory_info().rss / 2**20, "peak_rss_mib": peak}


# --------------------------------------------------------------------------- clocktower


def clocktower(params: dict[str, Any]) -> None:
    from clocktower.engine import Loop
    from clocktower.node import configure_logging, serve
    from clocktower.service import Service

    configure_logging(params.get("log_level", "INFO"))  # as `clocktower serve` logs
    options = node_options(params)

    async def report_ready(_service: Service, loop: Loop) -> None:
        await first_tick(loop)
        emit("ready", at=time.time(), **memory())
        await asyncio.Event().wait()  # until the node stops

    asyncio.run(serve(options, extra=report_ready))


async def first_tick(loop: Any) -> None:
    while loop.ticks < 1:  # noqa: ASYNC110 -- the loop counts ticks; it has no event for them
        await asyncio.sleep(0.001)


def node_options(params: dict[str, Any]) -> Any:
    from clocktower.node import NodeOptions

    return NodeOptions(
        database=params["database"],
        node_id="bench-node",
        max_concurrent_runs=params["slots"],
        artifacts_dir=Path(params["artifacts"]),
        own_process=True,  # as `clocktower serve`
    )


def clocktower_loop(params: dict[str, Any]) -> None:
    """The engine and its loop, as `serve` runs them, without what `serve` does
    before (applying a config file, checking every job's Python target)."""
    from clocktower.node import configure_logging

    configure_logging(params.get("log_level", "INFO"))  # as `clocktower serve` logs
    asyncio.run(_clocktower_loop(params))


async def _clocktower_loop(params: dict[str, Any]) -> None:
    from clocktower.engine import Loop
    from clocktower.node import build_engine, open_store

    options = node_options(params)
    store = await asyncio.to_thread(open_store, options.database)
    loop = Loop(build_engine(store, options))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runner = asyncio.create_task(loop.run())
    await first_tick(loop)
    emit("ready", at=time.time(), **memory())
    await stop.wait()
    loop.stop()
    await loop.drain(options.shutdown_grace)
    runner.cancel()
    store.close()


# --------------------------------------------------------------------------- apscheduler


def sqlite_jobstore(path: str) -> Any:
    """APScheduler's SQLAlchemyJobStore on SQLite in WAL mode, synchronous=NORMAL
    and a busy timeout: the same settings Clocktower uses."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return SQLAlchemyJobStore(engine=engine)


class Recorder:
    """What APScheduler's listeners saw: per execution (fire time, start of the
    target, when the scheduler knew it ended), and the misses."""

    def __init__(self) -> None:
        self.executed: list[tuple[float, float, float]] = []
        self.errors = 0
        self.missed = 0
        self.max_instances = 0

    def __call__(self, event: Any) -> None:
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_EXECUTED,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )

        if event.code == EVENT_JOB_EXECUTED:
            self.executed.append((event.scheduled_run_time.timestamp(), event.retval, time.time()))
        elif event.code == EVENT_JOB_ERROR:
            self.errors += 1
        elif event.code == EVENT_JOB_MISSED:
            self.missed += 1
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.max_instances += 1

    @property
    def seen(self) -> int:
        return len(self.executed) + self.errors + self.missed + self.max_instances


def apscheduler(params: dict[str, Any]) -> None:
    asyncio.run(_apscheduler(params))


async def _apscheduler(params: dict[str, Any]) -> None:
    from apscheduler.events import EVENT_ALL
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    logging.basicConfig(level=logging.ERROR)  # a missed run is a warning per run
    began = time.time()
    store = MemoryJobStore() if params["store"] == "memory" else sqlite_jobstore(params["path"])
    # misfire_grace_time None: a fire time runs however late, as in Clocktower
    # (whose grace is 60 s); APScheduler's default (1 s) drops later runs.
    defaults = {"misfire_grace_time": params.get("misfire_grace")}
    scheduler = AsyncIOScheduler(
        jobstores={"default": store}, job_defaults=defaults, timezone="UTC"
    )
    recorder = Recorder()
    scheduler.add_listener(recorder, EVENT_ALL)
    scenario = params["scenario"]
    if scenario == "seed":
        await _aps_seed(scheduler, store, params)
        return
    if scenario == "startup":
        await _aps_startup(scheduler, params, began)
        return
    scheduler.start(paused=True)
    target = _target(params["target"])
    first_fire = add_jobs(scheduler, params, target)
    scheduler.resume()
    expected = params["jobs"] * (params.get("seconds") or 1)
    deadline = first_fire + params["timeout"]
    while recorder.seen < expected and time.time() < deadline:  # noqa: ASYNC110 -- counted by listeners
        await asyncio.sleep(0.01)
    if scenario == "every":
        await asyncio.sleep(max(0.0, first_fire + params["seconds"] + 2 - time.time()))
    scheduler.shutdown(wait=False)
    emit(
        "result",
        first_fire=first_fire,
        executed=recorder.executed,
        errors=recorder.errors,
        missed=recorder.missed,
        max_instances=recorder.max_instances,
        **memory(),
    )


def _target(name: str) -> Callable[[], Any]:
    import firing_targets

    fn: Callable[[], Any] = getattr(firing_targets, name)
    return fn


def add_jobs(scheduler: Any, params: dict[str, Any], target: Callable[[], Any]) -> float:
    """Add the scenario's jobs to the paused scheduler; their first fire time is
    `lead` seconds after the last one was added (measured on a first batch)."""
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    count = params["jobs"]
    probe = min(200, count)
    began = time.perf_counter()
    for i in range(probe):
        scheduler.add_job(target, "date", run_date=datetime(2100, 1, 1, tzinfo=UTC), id=f"p{i}")
    per_job = (time.perf_counter() - began) / probe
    for i in range(probe):
        scheduler.remove_job(f"p{i}")
    first = float(int(time.time() + per_job * count * 1.5 + params["lead"]) + 1)
    start = datetime.fromtimestamp(first, UTC)
    for i in range(count):
        if params["scenario"] == "every":
            trigger: Any = IntervalTrigger(seconds=1, start_date=start, timezone=UTC)
        else:
            trigger = DateTrigger(run_date=start, timezone=UTC)
        scheduler.add_job(target, trigger, id=f"job-{i}")
    if time.time() > first - 0.5:
        raise SystemExit(f"adding {count} jobs overran the first fire time; raise --lead")
    return first


async def _aps_seed(scheduler: Any, store: Any, params: dict[str, Any]) -> None:
    """Write `jobs` one-off jobs, a day away, into the SQLite job store with
    executemany: the rows APScheduler itself would write, without a transaction
    per job."""
    import pickle

    from apscheduler.triggers.date import DateTrigger

    scheduler.start(paused=True)
    target = _target(params["target"])
    base = time.time() + 86400
    template = scheduler.add_job(target, "date", run_date=datetime.fromtimestamp(base, UTC))
    state = template.__getstate__()
    template.remove()
    rows = []
    for i in range(params["jobs"]):
        run_date = datetime.fromtimestamp(base + i, UTC)
        state |= {
            "id": f"job-{i}",
            "trigger": DateTrigger(run_date=run_date, timezone=UTC),
            "next_run_time": run_date,
        }
        rows.append(
            {
                "id": state["id"],
                "next_run_time": base + i,
                "job_state": pickle.dumps(state, store.pickle_protocol),
            }
        )
    with store.engine.begin() as conn:
        conn.execute(store.jobs_t.insert(), rows)
    scheduler.shutdown(wait=False)
    emit("result", jobs=len(rows))


async def _aps_startup(scheduler: Any, params: dict[str, Any], began: float) -> None:
    """Start-up with many jobs: from the store (SQLite), or added in code (memory)."""
    if params["store"] == "memory":
        from apscheduler.triggers.date import DateTrigger

        target = _target(params["target"])
        base = time.time() + 86400
        for i in range(params["jobs"]):
            run_date = datetime.fromtimestamp(base + i, UTC)
            scheduler.add_job(target, DateTrigger(run_date=run_date, timezone=UTC), id=f"job-{i}")
    scheduler.start()
    processed = asyncio.Event()
    # start() queues the first wake-up on the loop; this runs right after it.
    asyncio.get_running_loop().call_soon_threadsafe(processed.set)
    await processed.wait()
    emit("ready", at=time.time(), started=began, **memory())
    await asyncio.sleep(params.get("hold", 0.5))
    scheduler.shutdown(wait=False)


# --------------------------------------------------------------------------- bare spawn


def spawn(params: dict[str, Any]) -> None:
    asyncio.run(_spawn(params))


async def _spawn(params: dict[str, Any]) -> None:
    """Spawn `/bin/sh -c <command>` (what a command job runs), at most `slots` at a
    time: `jobs` every second for `seconds` (load), or back to back (capacity)."""
    slots = asyncio.Semaphore(params["slots"])
    argv = ["/bin/sh", "-c", params["command"]]
    done: list[tuple[float, float]] = []  # (due, finished)

    async def one(due: float) -> None:
        async with slots:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            await proc.wait()
            done.append((due, time.time()))

    first = float(int(time.time()) + 2)
    end = first + params["seconds"]
    tasks: list[asyncio.Task[None]] = []
    if params["mode"] == "capacity":
        await asyncio.sleep(first - time.time())

        async def worker() -> None:
            while time.time() < end:
                await one(time.time())

        tasks = [asyncio.create_task(worker()) for _ in range(params["slots"])]
    else:
        for second in range(params["seconds"]):
            await asyncio.sleep(max(0.0, first + second - time.time()))
            tasks += [asyncio.create_task(one(first + second)) for _ in range(params["jobs"])]
    await asyncio.gather(*tasks)
    emit("result", first_fire=first, done=done, **memory())


ROLES: dict[str, Callable[[dict[str, Any]], None]] = {
    "clocktower": clocktower,
    "clocktower-loop": clocktower_loop,
    "apscheduler": apscheduler,
    "spawn": spawn,
}

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    ROLES[sys.argv[1]](json.loads(sys.argv[2]))
