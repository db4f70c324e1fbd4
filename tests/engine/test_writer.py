"""The engine's grouped writes: slots, batching, and runs stopped while their
start is being written. SQLite and PostgreSQL, injected clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clocktower.engine import Engine, Loop
from clocktower.engine import engine as engine_module
from clocktower.engine import writer as writer_module
from clocktower.model import RunState
from clocktower.store import Store
from clocktower.store.writes import Written

from .helpers import make_engine, make_service, settle, step
from .targets import Concurrency

if TYPE_CHECKING:
    from tests.conftest import FakeClock

T0 = datetime(2025, 1, 6, 2, 59, 59, tzinfo=UTC)
AT3 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)


def nightly(service: Any, count: int, **extra: Any) -> None:
    for i in range(count):
        definition = {"call": "tests.engine.targets:overlapping", "cron": "0 3 * * *", **extra}
        service.create_job(definition, job_id=f"job-{i}", actor="t")


async def until_all_final(store: Store, count: int) -> None:
    for _ in range(1000):
        done = [r for r in store.list_runs(limit=count + 10) if r.state.final]
        if len(done) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"runs not final: {store.list_runs(limit=count + 10)}")


async def test_freed_slots_are_refilled_without_exceeding_them(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    nightly(make_service(store, clock), 12)
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=3)
    Concurrency.most = 0
    claimed = await step(engine, wait=False)
    assert len(claimed) == 3  # the tick claims for the free slots only
    await until_all_final(store, 12)
    await settle(engine)
    runs = store.list_runs(limit=20)
    assert [r.state for r in runs] == [RunState.SUCCEEDED] * 12
    assert sorted(r.result for r in runs) == sorted(r.id for r in runs)
    assert Concurrency.most == 3  # the writer refilled freed slots, never more than three
    assert engine.free_slots() == 3 and engine.executions == {}


async def test_starts_and_outcomes_of_many_runs_share_transactions(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    nightly(make_service(store, clock), 30)
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=30)
    writes = counting_writes(store)
    await step(engine)
    await until_all_final(store, 30)
    await settle(engine)
    assert [r.state for r in store.list_runs(limit=40)] == [RunState.SUCCEEDED] * 30
    assert sum(len(w.started) for w in writes) == 30
    assert sum(len(w.finished) for w in writes) == 30
    assert len(writes) < 30  # grouped, not one transaction per start and per outcome


async def test_a_run_stopped_while_its_start_is_written_ends_cancelled(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    nightly(make_service(store, clock), 1)
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path)
    gate = threading.Event()
    write = engine.writer._write

    def held(batch: Any, claim: int) -> Written:
        gate.wait(10)  # the start is in the transaction being written
        return write(batch, claim)

    engine.writer._write = held  # type: ignore[method-assign]
    (run,) = await step(engine, wait=False)
    await asyncio.sleep(0.05)
    assert engine.writer.busy  # held at the gate, with the run's start in its batch
    assert engine.cancel_local(run.id, "cancelled by bob")
    gate.set()
    await settle(engine)
    recorded = store.get_run(run.id)
    assert recorded.state is RunState.CANCELLED and recorded.error == "cancelled by bob"
    assert engine.free_slots() == engine.settings.max_concurrent_runs


async def test_a_run_stopped_before_its_start_is_written_is_given_back(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    nightly(make_service(store, clock), 1)
    clock.set(AT3 - timedelta(seconds=1))  # claimed ahead: it waits for its instant
    engine = make_engine(store, clock, tmp_path)
    (run,) = await step(engine, wait=False)
    await asyncio.sleep(0.01)
    assert engine.cancel_local(run.id, "interrupted: node shutting down")
    await settle(engine)
    recorded = store.get_run(run.id)
    assert recorded.state is RunState.SCHEDULED and recorded.node is None


async def test_due_runs_waiting_for_a_slot_do_not_wake_the_loop(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    for i in range(2):
        service.create_job({"command": "sleep 30", "cron": "0 3 * * *"}, job_id=f"j{i}", actor="t")
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=1)
    (run,) = await step(engine, wait=False)
    wake = await asyncio.to_thread(engine.next_wakeup)
    assert wake is not None and wake > clock()  # the lease, not the waiting run
    engine.accepting = False  # the freed slot stays free
    engine.cancel_local(run.id, "done")
    await settle(engine)
    assert engine.free_slots() == 1
    wake = await asyncio.to_thread(engine.next_wakeup)
    assert wake is not None and wake > clock()  # not accepting: still no reason to wake


async def test_outcomes_wait_for_running_runs_only_until_the_last_has_ended(
    store: Store, clock: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The group-commit wait ends when no run is left executing: with a wait of
    an hour, runs that end one after the other are still recorded at once."""
    monkeypatch.setattr(writer_module, "GROUP_DELAY", 3600.0)
    clock.set(T0)
    service = make_service(store, clock)
    for i, nap in enumerate((0.01, 0.05, 0.1)):
        definition = {"call": "tests.engine.targets:naps", "kwargs": {"seconds": nap}}
        service.create_job({**definition, "cron": "0 3 * * *"}, job_id=f"job-{i}", actor="t")
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=3)
    await step(engine)
    await asyncio.wait_for(until_all_final(store, 3), 30)
    await settle(engine)
    assert [r.state for r in store.list_runs(limit=10)] == [RunState.SUCCEEDED] * 3


def counting_writes(store: Store) -> list[Written]:
    writes: list[Written] = []
    write = store.write

    def counted(**kw: Any) -> Written:
        writes.append(written := write(**kw))
        return written

    store.write = counted  # type: ignore[method-assign]
    return writes


async def test_short_runs_are_started_ahead_of_a_free_slot(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """Runs that end at once (by the injected clock) let the writer start more
    due runs than there are free slots; they wait in memory for a slot, so the
    targets never outnumber the slots."""
    clock.set(T0)
    nightly(make_service(store, clock), 40)
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=2)
    writes = counting_writes(store)
    Concurrency.most = 0
    await step(engine, wait=False)
    await until_all_final(store, 40)
    await settle(engine)
    assert [r.state for r in store.list_runs(limit=50)] == [RunState.SUCCEEDED] * 40
    assert max(len(w.claimed) for w in writes) > 2  # more than the free slots
    assert Concurrency.most == 2
    assert engine.free_slots() == 2 and engine.executions == {}


class TickingClock:
    """Every reading is 0.5 s after the one before: every run looks long."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __call__(self) -> datetime:
        return self.clock.advance(0.5)


async def test_long_runs_are_not_started_ahead_of_a_free_slot(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """A node whose runs take long claims for its free slots only: the runs it
    cannot start now stay with the store, for any node with a free slot."""
    clock.set(T0)
    nightly(make_service(store, clock), 12)
    clock.set(AT3)
    engine = make_engine(store, TickingClock(clock), tmp_path, max_concurrent_runs=2)
    writes = counting_writes(store)
    await step(engine, wait=False)
    await until_all_final(store, 12)
    await settle(engine)
    assert [r.state for r in store.list_runs(limit=20)] == [RunState.SUCCEEDED] * 12
    assert max(len(w.claimed) for w in writes) <= 2


async def read_ahead(engine: Engine, quick: int) -> None:
    """As if `quick` short runs had just ended: the writer claims for the free
    slots and reads ahead."""
    engine._quick_endings = quick
    engine.writer.refill = True
    engine.writer.kick()
    await engine.writer.idle()


async def test_runs_read_ahead_take_the_slots_another_claim_gives_back(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """The loop's claim holds the free slots while it is written; the writer
    reads ahead meanwhile, so its runs wait. When the loop's claim finds
    nothing and gives its slots back, the waiting runs take them."""
    clock.set(T0)
    nightly(make_service(store, clock), 6)
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=2)
    while await asyncio.to_thread(engine.fire_due):
        pass
    gate = threading.Event()
    claim = engine.claim

    def held(limit: int | None = None) -> list[Any]:
        gate.wait(10)
        return claim(limit) if limit == 0 else []  # the other runs are the writer's

    engine.claim = held  # type: ignore[method-assign]
    Concurrency.most = 0
    tick = asyncio.create_task(engine.claim_and_start())
    await asyncio.sleep(0.05)  # the tick holds both slots, its claim at the gate
    assert engine.free_slots() == 0
    await read_ahead(engine, quick=2)
    assert len(engine._waiting) == 6
    gate.set()
    assert await tick == []
    await until_all_final(store, 6)
    await settle(engine)
    assert [r.state for r in store.list_runs(limit=10)] == [RunState.SUCCEEDED] * 6
    assert Concurrency.most == 2
    assert engine.free_slots() == 2 and engine._waiting == []


async def long_run_holding_the_slot(store: Store, clock: Any, tmp_path: Path) -> Engine:
    """A node with one slot, taken by a run that sleeps, and three due runs."""
    clock.set(T0)
    service = make_service(store, clock)
    definition = {"call": "tests.engine.targets:slow_async", "cron": "0 3 * * *"}
    service.create_job(definition, job_id="slow", actor="t")
    nightly(service, 3)
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=1, lease=3600)
    engine.claim = lambda limit=None: [  # type: ignore[method-assign]
        r for r in Engine.claim(engine, limit) if r.job_id == "slow"
    ]
    while await asyncio.to_thread(engine.fire_due):
        pass
    await engine.claim_and_start()
    for _ in range(500):
        if [r.state for r in store.list_runs(job_id="slow")] == [RunState.RUNNING]:
            break
        await asyncio.sleep(0.01)
    return engine


async def test_a_run_read_ahead_goes_back_to_the_store_when_no_slot_frees(
    store: Store, clock: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(engine_module, "READ_AHEAD_WAIT", 0.05)
    engine = await long_run_holding_the_slot(store, clock, tmp_path)
    await read_ahead(engine, quick=1)
    waiting = [e.run.id for e in engine._waiting]
    assert len(waiting) == 3
    for _ in range(500):
        if not engine._waiting and len(engine.executions) == 1:
            break
        await asyncio.sleep(0.01)
    for run_id in waiting:
        run = store.get_run(run_id)
        assert (run.state, run.node, run.started_at) == (RunState.SCHEDULED, None, None)
    assert [r.state for r in store.list_runs(job_id="slow")] == [RunState.RUNNING]
    engine.accepting = False  # the slot the sleeping run frees stays free
    for run_id in list(engine.executions):
        engine.cancel_local(run_id, "done")
    await settle(engine)


async def test_shutdown_gives_back_the_runs_read_ahead(
    store: Store, clock: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """Their targets never began: they are scheduled again for another node,
    not recorded as interrupted (which would spend a retry)."""
    monkeypatch.setattr(engine_module, "READ_AHEAD_WAIT", 3600.0)
    engine = await long_run_holding_the_slot(store, clock, tmp_path)
    await read_ahead(engine, quick=1)
    waiting = [e.run.id for e in engine._waiting]
    assert len(waiting) == 3
    await Loop(engine).drain(grace=0.1)
    assert [store.get_run(i).state for i in waiting] == [RunState.SCHEDULED] * 3
    (slow,) = store.list_runs(job_id="slow")
    assert slow.state is RunState.FAILED and slow.error == "interrupted: node shutting down"
