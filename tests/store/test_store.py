"""The store's contract, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from clocktower.model import (
    CommandTarget,
    Job,
    JobNotFound,
    JobSpec,
    RunState,
    TriggerKind,
    TriggerSpec,
)
from clocktower.store import Decision, FirePlan, NewRun, RunResult, Store
from clocktower.store.schema import metadata

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def spec(job_id: str = "nightly", **kw: object) -> JobSpec:
    return JobSpec(
        id=job_id,
        target=CommandTarget(command="true"),
        trigger=TriggerSpec(kind="cron", expr="0 3 * * *"),
        **kw,  # type: ignore[arg-type]
    )


def scheduled(job_id: str, at: datetime, **kw: object) -> NewRun:
    return NewRun(
        job_id=job_id, scheduled_for=at, trigger=TriggerKind.SCHEDULE, fire_key="schedule", **kw
    )  # type: ignore[arg-type]


def test_migrations_produce_the_current_schema(store: Store) -> None:
    with store.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert not store.needs_upgrade()


def test_upgrade_twice_is_harmless(store: Store) -> None:
    store.upgrade()
    assert not store.needs_upgrade()


def test_job_round_trip_and_listing(store: Store) -> None:
    store.put_job(spec("a", tags=("ops",)), now=T0, next_fire_at=T0 + timedelta(hours=1))
    store.put_job(spec("b"), now=T0, next_fire_at=None, paused=True)
    a = store.get_job("a")
    assert a.spec == spec("a", tags=("ops",))
    assert a.next_fire_at == T0 + timedelta(hours=1)
    assert [j.id for j in store.list_jobs()] == ["a", "b"]
    assert [j.id for j in store.list_jobs(tag="ops")] == ["a"]
    assert [j.id for j in store.list_jobs(paused=True)] == ["b"]
    assert [j.id for j in store.list_jobs(text="b")] == ["b"]


def test_put_job_again_bumps_version_and_can_keep_next_fire(store: Store) -> None:
    first = store.put_job(spec(), now=T0, next_fire_at=T0 + timedelta(hours=1))
    again = store.put_job(spec(description="x"), now=T0, next_fire_at=None, keep_next_fire=True)
    assert again.version == first.version + 1
    assert again.next_fire_at == T0 + timedelta(hours=1)


def test_deleted_job_keeps_its_history_and_cancels_waiting_runs(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=T0)
    (run,) = store.create_runs([scheduled("nightly", T0)], now=T0)
    store.delete_job("nightly", now=T0)
    with pytest.raises(JobNotFound):
        store.get_job("nightly")
    assert store.get_run(run.id).state is RunState.CANCELLED
    assert store.get_job("nightly", include_deleted=True).id == "nightly"


def test_a_fire_time_produces_at_most_one_run(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=T0)
    store.create_runs([scheduled("nightly", T0)], now=T0)
    again = store.create_runs([scheduled("nightly", T0)], now=T0)
    assert again == []
    manual = NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)
    assert len(store.create_runs([manual, manual], now=T0)) == 2  # manual never collides
    assert len(store.list_runs(job_id="nightly")) == 3


def test_fire_due_inserts_runs_and_advances_next_fire(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=T0)
    store.put_job(spec("later"), now=T0, next_fire_at=T0 + timedelta(hours=5))
    seen: list[str] = []

    def plan(job: Job) -> FirePlan:
        seen.append(job.id)
        return FirePlan([scheduled(job.id, T0)], T0 + timedelta(days=1))

    created, more = store.fire_due(horizon=T0 + timedelta(seconds=2), plan=plan, now=T0)
    assert seen == ["nightly"] and not more
    assert [(r.job_id, r.state) for r in created] == [("nightly", RunState.SCHEDULED)]
    assert store.get_job("nightly").next_fire_at == T0 + timedelta(days=1)


def test_paused_and_broken_jobs_do_not_fire(store: Store) -> None:
    store.put_job(spec("p"), now=T0, next_fire_at=T0, paused=True)
    store.put_job(spec("b"), now=T0, next_fire_at=T0, broken="gone")
    created, _ = store.fire_due(
        horizon=T0, plan=lambda j: FirePlan([scheduled(j.id, T0)], None), now=T0
    )
    assert created == []


def test_concurrent_fire_steps_never_double_fire(store_url: str) -> None:
    """Eight threads, each with its own connection pool, fire the same due jobs."""
    setup = Store(store_url)
    setup.upgrade()
    for i in range(20):
        setup.put_job(spec(f"job-{i}"), now=T0, next_fire_at=T0)
    setup.close()

    def plan(job: Job) -> FirePlan:
        # A buggy planner that ignores next_fire_at would still be stopped by the key.
        return FirePlan([scheduled(job.id, T0)], T0 + timedelta(days=1))

    errors: list[BaseException] = []

    def node() -> None:
        s = Store(store_url)
        try:
            for _ in range(3):
                s.fire_due(horizon=T0, plan=plan, now=T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=node) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = Store(store_url)
    runs = check.list_runs(limit=1000)
    check.close()
    assert sorted(r.job_id for r in runs) == sorted(f"job-{i}" for i in range(20))


def test_claims_by_two_nodes_are_disjoint(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)] * 5, now=T0
    )
    lease = T0 + timedelta(seconds=30)
    a = store.claim(node="a", horizon=T0, limit=3, lease_until=lease)
    b = store.claim(node="b", horizon=T0, limit=3, lease_until=lease)
    assert len(a) == 3 and len(b) == 2
    assert not {r.id for r in a} & {r.id for r in b}
    assert all(r.state is RunState.PENDING for r in a + b)


def test_claim_respects_due_time_and_priority(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    low = NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL, priority=0)
    high = NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL, priority=9)
    future = NewRun(
        job_id="nightly", scheduled_for=T0 + timedelta(minutes=1), trigger=TriggerKind.MANUAL
    )
    store.create_runs([low, high, future], now=T0)
    claimed = store.claim(node="a", horizon=T0, limit=1, lease_until=T0)
    assert [r.priority for r in claimed] == [9]
    rest = store.claim(node="a", horizon=T0, limit=10, lease_until=T0)
    assert len(rest) == 1  # the future one is not due


def _start(store: Store, run_id: int, node: str, decision: Decision) -> RunState:
    started = store.start(
        run_id,
        node=node,
        now=T0,
        lease_until=T0 + timedelta(seconds=30),
        decide=lambda job, run, running, queued: decision,
    )
    assert started is not None
    return started.run.state


def test_start_applies_the_decision(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)] * 3, now=T0
    )
    r1, r2, r3 = store.claim(node="a", horizon=T0, limit=3, lease_until=T0 + timedelta(hours=1))
    assert _start(store, r1.id, "a", Decision.start()) is RunState.RUNNING
    assert _start(store, r2.id, "a", Decision.skip("busy")) is RunState.SKIPPED
    assert store.get_run(r2.id).error == "busy"
    assert _start(store, r3.id, "a", Decision("queue")) is RunState.SCHEDULED
    # queued while the job is busy: not claimable
    assert store.claim(node="b", horizon=T0, limit=5, lease_until=T0) == []
    store.finish(r1.id, node="a", outcome=RunResult(RunState.SUCCEEDED), now=T0)
    assert [r.id for r in store.claim(node="b", horizon=T0, limit=5, lease_until=T0)] == [r3.id]


def test_only_the_owner_can_start_or_finish(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    (run,) = store.claim(node="a", horizon=T0, limit=1, lease_until=T0 + timedelta(hours=1))
    assert (
        store.start(run.id, node="b", now=T0, lease_until=T0, decide=lambda *a: Decision.start())
        is None
    )
    _start(store, run.id, "a", Decision.start())
    assert store.finish(run.id, node="b", outcome=RunResult(RunState.FAILED), now=T0) is None
    done = store.finish(
        run.id, node="a", outcome=RunResult(RunState.FAILED, exit_code=3, error="exited 3"), now=T0
    )
    assert done is not None and done.state is RunState.FAILED and done.exit_code == 3


def test_expired_lease_makes_a_run_lost_and_inserts_the_follow_up(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    store.create_runs([scheduled("nightly", T0)], now=T0)
    (run,) = store.claim(node="dead", horizon=T0, limit=1, lease_until=T0 + timedelta(seconds=30))
    _start(store, run.id, "dead", Decision.start())
    assert store.expire_leases(now=T0 + timedelta(seconds=10), follow_up=lambda j, r: []) == []

    def retry(job: Job, lost: object) -> list[NewRun]:
        return [
            NewRun(
                job_id=job.id,
                scheduled_for=T0,
                trigger=TriggerKind.RETRY,
                attempt=2,
                retry_of=run.id,
            )
        ]

    lost = store.expire_leases(now=T0 + timedelta(seconds=31), follow_up=retry)
    assert [(r.id, r.state) for r in lost] == [(run.id, RunState.LOST)]
    assert "dead" in (lost[0].error or "")
    retry_run = store.list_runs(job_id="nightly", trigger=TriggerKind.RETRY)[0]
    assert (retry_run.attempt, retry_run.retry_of) == (2, run.id)
    # the dead node cannot record an outcome afterwards
    assert store.finish(run.id, node="dead", outcome=RunResult(RunState.SUCCEEDED), now=T0) is None


def test_a_run_cancelled_while_its_node_was_dead_ends_cancelled_and_is_not_retried(
    store: Store,
) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    store.create_runs([scheduled("nightly", T0)], now=T0)
    (run,) = store.claim(node="dead", horizon=T0, limit=1, lease_until=T0 + timedelta(seconds=30))
    _start(store, run.id, "dead", Decision.start())
    store.cancel(run.id, now=T0, reason="cancelled by alice")  # its node never hears of it

    def retry(job: Job, lost: object) -> list[NewRun]:
        return [NewRun(job_id=job.id, scheduled_for=T0, trigger=TriggerKind.RETRY, attempt=2)]

    ended = store.expire_leases(now=T0 + timedelta(seconds=31), follow_up=retry)
    assert [(r.id, r.state, r.error) for r in ended] == [
        (run.id, RunState.CANCELLED, "cancelled by alice")
    ]
    assert store.list_runs(job_id="nightly", trigger=TriggerKind.RETRY) == []


def test_renew_keeps_leases_and_reports_lost_ownership(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    store.create_runs([scheduled("nightly", T0)], now=T0)
    (run,) = store.claim(node="a", horizon=T0, limit=1, lease_until=T0 + timedelta(seconds=30))
    assert store.renew(node="a", run_ids=[run.id], lease_until=T0 + timedelta(minutes=5)) == {
        run.id
    }
    assert store.expire_leases(now=T0 + timedelta(minutes=1), follow_up=lambda j, r: []) == []
    assert store.renew(node="b", run_ids=[run.id], lease_until=T0) == set()


def test_cancel_waiting_and_running_runs(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    a, _b = store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)] * 2, now=T0
    )
    assert store.cancel(a.id, now=T0).state is RunState.CANCELLED
    (claimed,) = store.claim(node="n", horizon=T0, limit=5, lease_until=T0 + timedelta(hours=1))
    _start(store, claimed.id, "n", Decision.start())
    store.cancel(claimed.id, now=T0)
    assert store.cancel_requested(node="n") == [claimed.id]


def test_output_keeps_head_and_tail_within_the_cap(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    (run,) = store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    cap = 10_000
    for batch in range(100):
        lines = [
            (float(batch), "stdout", f"line {batch:03d}-{i:02d} " + "x" * 80) for i in range(10)
        ]
        store.append_output(run.id, lines, cap=cap)
    chunks, dropped = store.read_output(run.id)
    kept = [text for c in chunks for _, _, text in c.lines]
    assert kept[0].startswith("line 000-00")  # how it started
    assert kept[-1].startswith("line 099-09")  # how it ended
    assert store.output_size(run.id) <= cap
    assert dropped > 0
    assert dropped + store.output_size(run.id) == store.get_run(run.id).output_bytes
    later, _ = store.read_output(run.id, after=chunks[-1].id)
    assert later == []


def test_one_batch_larger_than_the_cap_is_cut_to_its_head_and_tail(store: Store) -> None:
    """A program that prints fast arrives in large batches; the cap holds
    whatever the batch size."""
    store.put_job(spec(), now=T0, next_fire_at=None)
    (run,) = store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    lines = [(0.0, "stdout", f"{i:07d}") for i in range(10_000)]  # 80,000 bytes
    store.append_output(run.id, lines, cap=8_000)
    chunks, dropped = store.read_output(run.id)
    assert [c.part for c in chunks] == ["head", "tail"]
    head, tail = ([text for _, _, text in c.lines] for c in chunks)
    assert head == [f"{i:07d}" for i in range(500)]  # 4,000 bytes: how it started
    assert tail == [f"{i:07d}" for i in range(9_500, 10_000)]  # and how it ended
    assert dropped == 80_000 - 8_000 == store.get_run(run.id).output_bytes - 8_000


def test_artifacts_are_kept_with_the_run(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    (run,) = store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    store.add_artifact(run.id, "report.csv", b"a,b\n1,2\n", now=T0)
    assert store.list_artifacts(run.id) == [("report.csv", 8)]
    assert store.get_artifact(run.id, "report.csv") == b"a,b\n1,2\n"
    assert store.get_artifact(run.id, "nope") is None


def test_prune_keeps_the_newest_runs_per_job(store: Store) -> None:
    store.put_job(spec(), now=T0, next_fire_at=None)
    new = [
        NewRun(
            job_id="nightly",
            scheduled_for=T0 + timedelta(minutes=i),
            trigger=TriggerKind.MANUAL,
            state=RunState.SUCCEEDED,
            finished_at=T0,
        )
        for i in range(10)
    ]
    runs = store.create_runs(new, now=T0)
    store.append_output(runs[0].id, [(0.0, "stdout", "old")], cap=1000)
    removed = store.prune(now=T0, keep_runs=3, keep_days=30)
    assert removed == 7
    assert [r.id for r in store.list_runs(job_id="nightly")] == [r.id for r in runs[-3:]][::-1]
    assert store.prune(now=T0 + timedelta(days=31), keep_runs=3, keep_days=30) == 3


def test_events_and_nodes(store: Store) -> None:
    from clocktower.store import NodeInfo

    store.add_event(at=T0, actor="alice", action="job.pause", job_id="nightly")
    (event,) = store.list_events(job_id="nightly")
    assert (event.actor, event.action) == ("alice", "job.pause")
    info = NodeInfo("n1", "host", 1, "0.1", T0, T0, None)
    store.heartbeat(info)
    store.heartbeat(NodeInfo("n1", "host", 1, "0.1", T0, T0 + timedelta(seconds=10), None))
    (node,) = store.list_nodes()
    assert node.heartbeat_at == T0 + timedelta(seconds=10)
