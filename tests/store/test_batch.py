"""The batched writes of a busy node (`Store.write`), on SQLite and PostgreSQL:
the same decisions as one run at a time, in one transaction."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from clocktower.engine import Engine, EngineSettings
from clocktower.engine.policies import decide_start, retry_for
from clocktower.model import (
    CommandTarget,
    Job,
    JobSpec,
    Overlap,
    Policies,
    RunState,
    TriggerKind,
)
from clocktower.store import NewRun, RunResult, Store
from clocktower.store.output import Output
from clocktower.store.schema import jobs, runs
from clocktower.store.writes import Finish

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
LEASE = T0 + timedelta(minutes=1)


def job(store: Store, job_id: str, **policies: object) -> None:
    spec = JobSpec(
        id=job_id,
        target=CommandTarget(command="true"),
        policies=Policies(**policies),  # type: ignore[arg-type]
    )
    store.put_job(spec, now=T0, next_fire_at=None)


def runs_of(
    store: Store, job_id: str, count: int, *, at: datetime = T0, priority: int = 0
) -> list[int]:
    new = [
        NewRun(job_id=job_id, scheduled_for=at, trigger=TriggerKind.MANUAL, priority=priority)
        for _ in range(count)
    ]
    return [run.id for run in store.create_runs(new, now=T0)]


def claimed(store: Store, node: str = "a", limit: int = 10) -> list[int]:
    return [r.id for r in store.claim(node=node, horizon=T0, limit=limit, lease_until=LEASE)]


def start(store: Store, ids: list[int], node: str = "a") -> dict[int, RunState | None]:
    written = store.write(node=node, now=T0, starts=ids, lease_until=LEASE, decide=decide_start)
    return {i: (s.run.state if s else None) for i, s in written.started.items()}


def test_a_batch_of_starts_decides_each_run_against_the_ones_before(store: Store) -> None:
    job(store, "skip")
    first, second = runs_of(store, "skip", 2)
    assert claimed(store) == [first, second]
    assert start(store, [first, second]) == {first: RunState.RUNNING, second: RunState.SKIPPED}
    assert f"previous run {first} still running" in (store.get_run(second).error or "")


def test_a_batch_of_starts_queues_one_and_skips_the_rest(store: Store) -> None:
    job(store, "queue", overlap=Overlap.QUEUE)
    a, b, c = runs_of(store, "queue", 3)
    claimed(store)
    states = start(store, [a, b, c])
    assert states == {a: RunState.RUNNING, b: RunState.SCHEDULED, c: RunState.SKIPPED}
    assert "already queued" in (store.get_run(c).error or "")
    assert claimed(store, node="b") == []  # the queued one waits for the running one


def test_a_queued_run_that_starts_in_a_batch_no_longer_counts_as_waiting(store: Store) -> None:
    job(store, "queue", overlap=Overlap.QUEUE)
    a, b = runs_of(store, "queue", 2)
    claimed(store)
    assert start(store, [a, b]) == {a: RunState.RUNNING, b: RunState.SCHEDULED}
    (c,) = runs_of(store, "queue", 1)
    # a ends; two slots are free: b (queued) starts, and c queues behind it
    written = store.write(
        node="a",
        now=T0,
        finishes=[Finish(a, RunResult(RunState.SUCCEEDED), T0)],
        claim=2,
        lease_until=LEASE,
        decide=decide_start,
    )
    assert {s.run.id: s.run.state for s in written.claimed} == {
        b: RunState.RUNNING,
        c: RunState.SCHEDULED,
    }


def test_the_retry_of_a_backfill_run_waits_its_turn_instead_of_being_skipped(
    store: Store,
) -> None:
    job(store, "nightly", retries=1)
    series = [
        NewRun(
            job_id="nightly",
            scheduled_for=T0 + timedelta(days=day),
            due_at=T0,
            trigger=TriggerKind.BACKFILL,
            queued=True,
        )
        for day in range(2)
    ]
    first, second = (run.id for run in store.create_runs(series, now=T0))
    assert claimed(store) == [first]  # a series runs one at a time
    start(store, [first])
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    failed = dataclasses.replace(store.get_run(first), state=RunState.FAILED, finished_at=t1)
    retries = retry_for(store.get_job("nightly"), failed, t1)
    written = store.write(
        node="a",
        now=t1,
        finishes=[Finish(first, RunResult(RunState.FAILED), t1, retries)],
        claim=2,
        lease_until=t1 + timedelta(minutes=1),
        decide=decide_start,
    )
    assert [(s.run.id, s.run.state) for s in written.claimed] == [(second, RunState.RUNNING)]

    # the retry is due while the next run of the series runs: it waits
    lease = t2 + timedelta(minutes=1)
    again = store.write(node="a", now=t2, claim=2, lease_until=lease, decide=decide_start)
    assert again.claimed == []
    (retry,) = store.list_runs(job_id="nightly", trigger=TriggerKind.RETRY)
    assert retry.state is RunState.SCHEDULED
    ended = store.write(
        node="a",
        now=t2,
        finishes=[Finish(second, RunResult(RunState.SUCCEEDED), t2)],
        claim=2,
        lease_until=lease,
        decide=decide_start,
    )
    assert [(s.run.id, s.run.state) for s in ended.claimed] == [(retry.id, RunState.RUNNING)]


def test_a_batch_of_starts_allows_up_to_max_concurrency(store: Store) -> None:
    job(store, "allow", overlap=Overlap.ALLOW, max_concurrency=2)
    a, b, c = runs_of(store, "allow", 3)
    claimed(store)
    assert start(store, [a, b, c]) == {
        a: RunState.RUNNING,
        b: RunState.RUNNING,
        c: RunState.SKIPPED,
    }


def test_a_batch_of_starts_replaces_the_running_run(store: Store) -> None:
    job(store, "replace", overlap=Overlap.REPLACE)
    (old,) = runs_of(store, "replace", 1)
    claimed(store)
    start(store, [old])
    (new,) = runs_of(store, "replace", 1)
    claimed(store)
    written = store.write(node="a", now=T0, starts=[new], lease_until=LEASE, decide=decide_start)
    started = written.started[new]
    assert started is not None and started.started and started.replaced == [old]
    assert store.cancel_requested(node="a") == [old]


def test_only_the_owner_starts_its_claimed_runs(store: Store) -> None:
    job(store, "nightly")
    (run,) = runs_of(store, "nightly", 1)
    claimed(store, node="a")
    assert start(store, [run], node="b") == {run: None}
    assert store.get_run(run).state is RunState.PENDING


def test_claim_and_start_takes_due_runs_by_priority_up_to_the_limit(store: Store) -> None:
    for name in ("low", "high", "mid", "later"):
        job(store, name)
    (low,) = runs_of(store, "low", 1)
    (high,) = runs_of(store, "high", 1, priority=9)
    (mid,) = runs_of(store, "mid", 1, priority=5)
    runs_of(store, "later", 1, at=T0 + timedelta(seconds=1), priority=99)  # not due yet
    written = store.write(node="a", now=T0, claim=2, lease_until=LEASE, decide=decide_start)
    assert [s.run.id for s in written.claimed] == [high, mid] and written.more
    assert {store.get_run(i).state for i in (high, mid)} == {RunState.RUNNING}
    assert store.get_run(high).node == "a" and store.get_run(high).started_at == T0
    written = store.write(node="a", now=T0, claim=5, lease_until=LEASE, decide=decide_start)
    assert [s.run.id for s in written.claimed] == [low] and not written.more


def test_claim_and_start_applies_the_overlap_policy(store: Store) -> None:
    job(store, "skip")
    a, b = runs_of(store, "skip", 2)
    written = store.write(node="a", now=T0, claim=5, lease_until=LEASE, decide=decide_start)
    assert [(s.run.id, s.started) for s in written.claimed] == [(a, True), (b, False)]
    assert store.get_run(b).state is RunState.SKIPPED


def test_outcomes_are_written_before_the_next_start_is_decided(store: Store) -> None:
    job(store, "every")
    (first,) = runs_of(store, "every", 1)
    claimed(store)
    start(store, [first])
    (second,) = runs_of(store, "every", 1)
    done = Finish(first, RunResult(RunState.SUCCEEDED, result=1.5), T0)
    written = store.write(
        node="a", now=T0, finishes=[done], claim=1, lease_until=LEASE, decide=decide_start
    )
    assert written.finished == {first: True}
    assert [(s.run.id, s.started) for s in written.claimed] == [(second, True)]
    recorded = store.get_run(first)
    assert (recorded.state, recorded.result, recorded.finished_at) == (RunState.SUCCEEDED, 1.5, T0)


def test_an_outcome_may_say_when_the_target_began(store: Store) -> None:
    """A run started ahead of a free slot began later than its start was
    written; its record says when the target began. Without `began` the
    start stays as written."""
    job(store, "every", overlap=Overlap.ALLOW, max_concurrency=2)
    ahead, plain = runs_of(store, "every", 2)
    claimed(store)
    start(store, [ahead, plain])
    began = T0 + timedelta(seconds=3)
    store.write(
        node="a",
        now=T0 + timedelta(seconds=4),
        finishes=[
            Finish(ahead, RunResult(RunState.SUCCEEDED), T0 + timedelta(seconds=4), began=began),
            Finish(plain, RunResult(RunState.SUCCEEDED), T0 + timedelta(seconds=4)),
        ],
    )
    assert store.get_run(ahead).started_at == began
    assert store.get_run(ahead).duration == 1.0
    assert store.get_run(plain).started_at == T0


def test_outcomes_of_runs_another_node_owns_are_refused(store: Store) -> None:
    job(store, "nightly")
    mine, theirs = runs_of(store, "nightly", 2)
    claimed(store, node="a", limit=1)
    claimed(store, node="b", limit=1)
    start(store, [mine], node="a")
    retry = NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.RETRY, attempt=2)
    written = store.write(
        node="a",
        now=T0,
        finishes=[
            Finish(mine, RunResult(RunState.FAILED, exit_code=1), T0, [retry]),
            Finish(theirs, RunResult(RunState.SUCCEEDED), T0, [retry]),
        ],
    )
    assert written.finished == {mine: True, theirs: False}
    assert store.get_run(mine).state is RunState.FAILED
    assert store.get_run(theirs).state is RunState.PENDING
    assert len(store.list_runs(trigger=TriggerKind.RETRY)) == 1  # only the owned one's follow-up


def test_a_run_ended_twice_in_one_batch_keeps_the_first_outcome(store: Store) -> None:
    job(store, "nightly")
    job(store, "hourly")
    (first,) = runs_of(store, "nightly", 1)
    (second,) = runs_of(store, "hourly", 1)
    claimed(store, node="a", limit=2)
    assert start(store, [first, second], node="a") == {
        first: RunState.RUNNING,
        second: RunState.RUNNING,
    }
    retry = NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.RETRY, attempt=2)
    written = store.write(
        node="a",
        now=T0,
        outputs=[Output(second, [(1.0, "stdout", "kept")], cap=1 << 20)],
        finishes=[
            Finish(first, RunResult(RunState.SUCCEEDED), T0),
            Finish(second, RunResult(RunState.SUCCEEDED), T0),
            Finish(first, RunResult(RunState.TIMED_OUT), T0, [retry]),
        ],
    )
    assert written.finished == {first: True, second: True}
    assert store.get_run(first).state is RunState.SUCCEEDED
    assert store.get_run(second).state is RunState.SUCCEEDED
    assert store.list_runs(trigger=TriggerKind.RETRY) == []  # the ignored outcome's retry
    chunks, _ = store.read_output(second)  # the batch was written again, output once
    assert [line for chunk in chunks for line in chunk.lines] == [(1.0, "stdout", "kept")]


def test_output_is_stored_with_the_outcome(store: Store) -> None:
    job(store, "nightly")
    (run,) = runs_of(store, "nightly", 1)
    claimed(store)
    start(store, [run])
    lines = [(1.0, "stdout", "hello"), (2.0, "stderr", "bye")]
    store.write(
        node="a",
        now=T0,
        outputs=[Output(run, lines, 1 << 20, progress=(3, 4))],
        finishes=[Finish(run, RunResult(RunState.SUCCEEDED), T0)],
    )
    chunks, dropped = store.read_output(run)
    assert [line for chunk in chunks for line in chunk.lines] == lines and dropped == 0
    recorded = store.get_run(run)
    assert (recorded.state, recorded.progress_done, recorded.progress_total) == (
        RunState.SUCCEEDED,
        3,
        4,
    )


def test_a_changed_definition_is_read_again(store: Store) -> None:
    job(store, "nightly", priority=1)
    assert store.get_job("nightly").spec.policies.priority == 1
    job(store, "nightly", priority=7)
    assert store.get_job("nightly").spec.policies.priority == 7
    (run,) = runs_of(store, "nightly", 1)
    claimed(store)
    written = store.write(node="a", now=T0, starts=[run], lease_until=LEASE, decide=decide_start)
    started = written.started[run]
    assert started is not None and started.job is not None
    assert started.job.spec.policies.priority == 7


def test_dependents_of_finds_the_jobs_waiting_for_each(store: Store) -> None:
    for name in ("extract", "transform"):
        job(store, name)
    for name, after in (("load", ("extract", "transform")), ("report", ("transform",))):
        spec = JobSpec(id=name, target=CommandTarget(command="true"), after=after)
        store.put_job(spec, now=T0, next_fire_at=None)
    found = store.dependents_of(["extract", "transform", "nobody"])
    assert {k: sorted(j.id for j in v) for k, v in found.items()} == {
        "extract": ["load"],
        "transform": ["load", "report"],
    }
    store.delete_job("report", now=T0)
    assert [j.id for j in store.dependents("transform")] == ["load"]


def two_upstream_runs_running(store: Store) -> tuple[int, int]:
    """`load` waits for `extract` and `fetch`, whose runs are running on node a."""
    for name in ("extract", "fetch"):
        job(store, name)
    spec = JobSpec(id="load", target=CommandTarget(command="true"), after=("extract", "fetch"))
    store.put_job(spec, now=T0, next_fire_at=None)
    first, second = runs_of(store, "extract", 1) + runs_of(store, "fetch", 1)
    claimed(store)
    start(store, [first, second])
    return first, second


def test_two_upstream_successes_in_one_batch_start_their_dependent_once(
    store: Store, tmp_path: Path
) -> None:
    """`extract` and `fetch` succeed in the same transaction (a node records
    outcomes in batches): `load`, after both, runs once."""
    first, second = two_upstream_runs_running(store)
    engine = Engine(store, EngineSettings(node_id="a", artifacts_dir=tmp_path), clock=lambda: T0)
    ok = RunResult(RunState.SUCCEEDED)
    store.write(
        node="a",
        now=T0,
        finishes=[
            Finish(first, ok, T0, succeeded_job="extract"),
            Finish(second, ok, T0 + timedelta(milliseconds=1), succeeded_job="fetch"),
        ],
        dependents=engine._dependents,
    )
    assert [r.trigger for r in store.list_runs(job_id="load")] == [TriggerKind.DEPENDENCY]


@pytest.mark.postgres
def test_two_upstream_jobs_ending_at_once_start_their_dependent_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """`load` waits for `extract` and `fetch`. Two nodes record their successes
    in concurrent transactions: the second must not decide before the first
    has committed (each would miss the other's success, and `load` would never
    run), nor run `load` a second time after it."""
    store = Store(postgres_url)
    store.upgrade()
    try:
        first, second = two_upstream_runs_running(store)
        engine = Engine(
            store, EngineSettings(node_id="a", artifacts_dir=tmp_path), clock=lambda: T0
        )
        inside, release = threading.Event(), threading.Event()

        def held(finish: Finish, waiting: list[Job], succeeded: frozenset[str]) -> list[NewRun]:
            created = engine._dependents(finish, waiting, succeeded)
            inside.set()
            release.wait(30)  # the transaction recording `extract` stays open
            return created

        def finish(run_id: int, job_id: str, dependents: Any) -> None:
            done = Finish(run_id, RunResult(RunState.SUCCEEDED), T0, succeeded_job=job_id)
            store.write(node="a", now=T0, finishes=[done], dependents=dependents)

        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(finish, first, "extract", held)
            assert inside.wait(30)
            two = pool.submit(finish, second, "fetch", engine._dependents)
            for _ in range(1000):  # until the second has ended or waits for a lock
                if two.done() or _waiting_for_a_lock(postgres_url):
                    break
                time.sleep(0.01)
            release.set()
            one.result(30)
            two.result(30)
        assert [r.trigger for r in store.list_runs(job_id="load")] == [TriggerKind.DEPENDENCY]
    finally:
        store.close()


def _waiting_for_a_lock(url: str) -> int:
    """How many sessions of the test database wait for a lock."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1).split("?")[0]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.postgres
def test_two_batches_locking_the_same_jobs_wait_instead_of_deadlocking(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Node a records `u1` (which `b` waits for) and starts a run of `a`; node b
    records `u2` (which `a` waits for) and starts a run of `b`. Each batch needs
    both job rows; taking them in one statement in id order, the second waits
    for the first instead of each holding one the other wants. The job row
    `b` is held elsewhere until both batches wait, so that they overlap."""
    store = Store(postgres_url)
    store.upgrade()
    try:
        for name in ("u1", "u2"):
            job(store, name)
        for name, upstream in (("a", "u2"), ("b", "u1")):
            spec = JobSpec(id=name, target=CommandTarget(command="true"), after=(upstream,))
            store.put_job(spec, now=T0, next_fire_at=None)
        (u1,), (u2,) = runs_of(store, "u1", 1), runs_of(store, "u2", 1)
        (run_a,), (run_b,) = runs_of(store, "a", 1), runs_of(store, "b", 1)
        for node, ids in (("a", [u1, run_a]), ("b", [u2, run_b])):  # each node claims two
            with store.db.write() as conn:
                conn.execute(
                    update(runs)
                    .where(runs.c.id.in_(ids))
                    .values(state=RunState.PENDING, node=node, lease_until=LEASE)
                )
        start(store, [u1], node="a")
        start(store, [u2], node="b")
        engine = Engine(
            store, EngineSettings(node_id="a", artifacts_dir=tmp_path), clock=lambda: T0
        )

        def batch(node: str, upstream_run: int, upstream: str, own_run: int) -> None:
            done = Finish(upstream_run, RunResult(RunState.SUCCEEDED), T0, succeeded_job=upstream)
            store.write(
                node=node,
                now=T0,
                finishes=[done],
                starts=[own_run],
                lease_until=LEASE,
                decide=decide_start,
                dependents=engine._dependents,
            )

        with (
            caplog.at_level(logging.WARNING, logger="clocktower.store"),
            ThreadPoolExecutor(2) as pool,
            store.db.engine.connect() as holder,
        ):
            holder.execute(select(jobs.c.id).where(jobs.c.id == "b").with_for_update())
            one = pool.submit(batch, "a", u1, "u1", run_a)
            two = pool.submit(batch, "b", u2, "u2", run_b)
            for _ in range(3000):  # until both batches wait for a lock
                if one.done() or two.done() or _waiting_for_a_lock(postgres_url) >= 2:
                    break
                time.sleep(0.01)
            assert _waiting_for_a_lock(postgres_url) >= 2
            holder.rollback()  # lets them go
            one.result(60)
            two.result(60)
        assert [r.getMessage() for r in caplog.records] == []  # no batch was aborted
        assert {store.get_run(i).state for i in (u1, u2)} == {RunState.SUCCEEDED}
        assert {store.get_run(i).state for i in (run_a, run_b)} == {RunState.RUNNING}
        for name in ("a", "b"):
            assert len(store.list_runs(job_id=name, trigger=TriggerKind.DEPENDENCY)) == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_a_claim_leaves_the_runs_of_a_job_another_transaction_holds(postgres_url: str) -> None:
    """A batch does not wait for a job row that another transaction holds (an
    edit, another node's batch): its runs stay due, for the next claim."""
    store = Store(postgres_url)
    store.upgrade()
    try:
        for name in ("held", "free"):
            job(store, name)
        (held,), (free,) = runs_of(store, "held", 1), runs_of(store, "free", 1)

        def claim(limit: int) -> tuple[list[tuple[int, bool]], bool]:
            written = store.write(
                node="a", now=T0, claim=limit, lease_until=LEASE, decide=decide_start
            )
            return [(s.run.id, s.started) for s in written.claimed], written.more

        with store.db.engine.connect() as holder:
            holder.execute(select(jobs.c.id).where(jobs.c.id == "held").with_for_update())
            # The held job's run comes first; passing over it is not "more to claim",
            # or the writer would claim again at once, and again, while the job is held.
            assert claim(1) == ([], False)
            assert claim(5) == ([(free, True)], False)
            assert store.get_run(held).state is RunState.SCHEDULED
        assert claim(5) == ([(held, True)], False)
    finally:
        store.close()
