"""Every policy of DESIGN.md, on SQLite and PostgreSQL, with an injected clock and
real commands."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clocktower.model import RunState, TriggerKind
from clocktower.store import Store

from .helpers import (
    first_run_running,
    make_engine,
    make_service,
    output_text,
    settle,
    step,
    until_running,
)

T0 = datetime(2025, 1, 6, 2, 59, 59, tzinfo=UTC)  # one second before 03:00
AT3 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)


def job(command: str = "true", **extra: Any) -> dict[str, Any]:
    return {"command": command, "cron": "0 3 * * *", **extra}


async def test_a_job_fires_once_at_its_fire_time_with_its_context(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    service.create_job(
        job('echo "$CLOCKTOWER_JOB $CLOCKTOWER_SCHEDULED_FOR $CLOCKTOWER_ATTEMPT"'),
        job_id="nightly",
        actor="test",
    )
    engine = make_engine(store, clock, tmp_path)
    assert store.get_job("nightly").next_fire_at == AT3
    clock.set(AT3)
    claimed = await step(engine)
    assert len(claimed) == 1
    (run,) = store.list_runs(job_id="nightly")
    assert run.state is RunState.SUCCEEDED
    assert run.scheduled_for == AT3 and run.trigger is TriggerKind.SCHEDULE
    assert run.started_at is not None and run.started_at >= AT3
    assert output_text(store, run.id) == "nightly 2025-01-06T03:00:00Z 1"
    assert store.get_job("nightly").next_fire_at == AT3 + timedelta(days=1)
    # another step at the same instant creates nothing more
    assert await step(engine) == []
    assert len(store.list_runs(job_id="nightly")) == 1


async def test_creating_editing_or_resuming_never_fires(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(AT3)  # exactly at a fire time
    service = make_service(store, clock)
    service.create_job(job(), job_id="nightly", actor="test")
    service.update_job("nightly", {"timeout": "5m"}, actor="test")
    service.pause("nightly", actor="test")
    service.resume("nightly", actor="test")
    await step(make_engine(store, clock, tmp_path))
    assert store.list_runs(job_id="nightly") == []
    assert store.get_job("nightly").next_fire_at == AT3 + timedelta(days=1)


@pytest.mark.parametrize(
    ("policy", "runs_for", "missed", "missed_range"),
    [
        ("latest", ["2025-01-10"], 4, ("2025-01-06", "2025-01-09")),
        (
            "all",
            ["2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10"],
            0,
            None,
        ),
        ("none", [], 5, ("2025-01-06", "2025-01-10")),
    ],
)
async def test_catch_up_after_downtime(
    store: Store,
    clock: Any,
    tmp_path: Path,
    policy: str,
    runs_for: list[str],
    missed: int,
    missed_range: tuple[str, str] | None,
) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(job(catch_up=policy), job_id="nightly", actor="t")
    clock.set(datetime(2025, 1, 10, 12, 0, tzinfo=UTC))  # down for 5 fire times
    engine = make_engine(store, clock, tmp_path)
    for _ in range(6):
        await step(engine)
    runs = store.list_runs(job_id="nightly")
    ran = [f"{r.scheduled_for:%Y-%m-%d}" for r in reversed(runs) if r.state is RunState.SUCCEEDED]
    assert ran == runs_for  # oldest first
    records = [r for r in runs if r.state is RunState.MISSED]
    if missed:
        (record,) = records
        assert record.missed_count == missed
        assert "missed" in (record.error or "")
        assert record.missed_until is not None
        first, last = f"{record.scheduled_for:%Y-%m-%d}", f"{record.missed_until:%Y-%m-%d}"
        assert (first, last) == missed_range  # the fire times the record covers
    else:
        assert records == []
    assert store.get_job("nightly").next_fire_at == datetime(2025, 1, 11, 3, 0, tzinfo=UTC)


async def test_catch_up_window_bounds_what_runs(store: Store, clock: Any, tmp_path: Path) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        job(catch_up="all", catch_up_window="2d"), job_id="nightly", actor="t"
    )
    clock.set(datetime(2025, 1, 10, 12, 0, tzinfo=UTC))
    engine = make_engine(store, clock, tmp_path)
    for _ in range(3):
        await step(engine)
    runs = store.list_runs(job_id="nightly")
    ran = sorted(f"{r.scheduled_for:%d}" for r in runs if r.state is RunState.SUCCEEDED)
    assert ran == ["09", "10"]
    (record,) = [r for r in runs if r.state is RunState.MISSED]
    assert record.missed_count == 3
    assert record.missed_until is not None
    assert (record.scheduled_for.day, record.missed_until.day) == (6, 8)


async def test_a_one_off_whose_instant_passed_while_down_runs_on_start(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        {"command": "true", "at": "2025-01-06T09:00:00Z"}, job_id="campaign-1", actor="t"
    )
    clock.set(datetime(2025, 1, 6, 15, 0, tzinfo=UTC))
    engine = make_engine(store, clock, tmp_path)
    await step(engine)
    (run,) = store.list_runs(job_id="campaign-1")
    assert run.state is RunState.SUCCEEDED
    assert run.scheduled_for == datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    assert store.get_job("campaign-1").next_fire_at is None
    clock.advance(86400)
    await step(engine)
    assert len(store.list_runs(job_id="campaign-1")) == 1


async def _first_run_running(store: Store, clock: Any, tmp_path: Path, **policy: Any) -> Any:
    clock.set(T0)
    return await first_run_running(store, clock, tmp_path, {"command": "sleep 30", **policy})


async def test_a_node_that_lost_a_lease_stops_the_run_and_its_outcome_is_refused(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """Fail closed: another node declared the run lost (its lease passed
    unrenewed); the node that still runs it stops it at its next renewal, and
    what it would record is refused."""
    clock.set(T0)
    pidfile = tmp_path / "pid"
    make_service(store, clock).create_job(
        job(f'echo $$ > "{pidfile}"; exec sleep 60', kill_grace="1s"), job_id="slow", actor="t"
    )
    engine = make_engine(store, clock, tmp_path)
    clock.set(AT3)
    (run,) = await step(engine, wait=False)
    await until_running(engine, store, run.id)
    for _ in range(500):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pid = int(pidfile.read_text())
    clock.advance(engine.settings.lease + 1)  # no renewal meanwhile
    other = make_engine(store, clock, tmp_path, node="node-b")
    assert [r.id for r in await asyncio.to_thread(other.expire_leases)] == [run.id]
    await asyncio.to_thread(engine.renew_leases)  # finds it no longer owns the run
    await settle(engine)
    assert engine.executions == {}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the command is gone
    recorded = store.get_run(run.id)
    assert recorded.state is RunState.LOST and "stopped renewing" in (recorded.error or "")


async def test_overlap_skip_records_a_skipped_run(
    store: Store, clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, first = await _first_run_running(store, clock, tmp_path)
    (second,) = await step(engine, wait=False)
    await asyncio.sleep(0)
    for _ in range(200):  # recorded, and its task done with it
        done = second.id not in engine.executions
        if done and store.get_run(second.id).state is RunState.SKIPPED:
            break
        await asyncio.sleep(0.01)
    skipped = store.get_run(second.id)
    assert skipped.state is RunState.SKIPPED
    assert f"previous run {first.id} still running" in (skipped.error or "")
    said = f"run {second.id} of slow skipped: previous run {first.id} still running"
    assert any(r.getMessage().startswith(said) for r in caplog.records)  # the node's log says why
    engine.cancel_local(first.id, "test over")
    await settle(engine)
    assert store.get_run(first.id).state is RunState.CANCELLED


async def test_overlap_queue_keeps_one_waiting(store: Store, clock: Any, tmp_path: Path) -> None:
    engine, first = await _first_run_running(store, clock, tmp_path, overlap="queue")
    (second,) = await step(engine, wait=False)
    for _ in range(200):
        if store.get_run(second.id).state is RunState.SCHEDULED:
            break
        await asyncio.sleep(0.01)
    assert store.get_run(second.id).state is RunState.SCHEDULED  # queued
    clock.advance(60)
    await step(engine, wait=False)
    for _ in range(200):
        if any(r.state is RunState.SKIPPED for r in store.list_runs(job_id="slow")):
            break
        await asyncio.sleep(0.01)
    third = store.list_runs(job_id="slow")[0]
    assert third.state is RunState.SKIPPED and "already queued" in (third.error or "")
    engine.cancel_local(first.id, "done")
    await settle(engine)
    await step(engine, wait=False)
    await until_running(engine, store, second.id)  # the queued one goes next
    assert [r.id for r in store.active_runs()] == [second.id]
    engine.cancel_local(second.id, "done")
    await settle(engine)


async def test_overlap_allow_up_to_max_concurrency(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    engine, first = await _first_run_running(
        store, clock, tmp_path, overlap="allow", max_concurrency=2
    )
    (second,) = await step(engine, wait=False)
    await until_running(engine, store, second.id)
    clock.advance(60)
    (third,) = await step(engine, wait=False)
    for _ in range(200):
        if store.get_run(third.id).state is RunState.SKIPPED:
            break
        await asyncio.sleep(0.01)
    assert "max_concurrency 2" in (store.get_run(third.id).error or "")
    for run_id in (first.id, second.id):
        engine.cancel_local(run_id, "done")
    await settle(engine)


async def test_overlap_replace_cancels_the_running_one(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    engine, first = await _first_run_running(store, clock, tmp_path, overlap="replace")
    (second,) = await step(engine, wait=False)
    await until_running(engine, store, second.id)
    for _ in range(500):
        if store.get_run(first.id).state is RunState.CANCELLED:
            break
        await asyncio.sleep(0.01)
    assert store.get_run(first.id).state is RunState.CANCELLED
    engine.cancel_local(second.id, "done")
    await settle(engine)


async def test_timeout_then_retries_with_backoff(store: Store, clock: Any, tmp_path: Path) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        job("sleep 30", timeout="1s", kill_grace="1s", retries=2, retry_delay="10s"),
        job_id="nightly",
        actor="t",
    )
    engine = make_engine(store, clock, tmp_path)
    clock.set(AT3)
    await step(engine)
    (first,) = store.list_runs(job_id="nightly", trigger=TriggerKind.SCHEDULE)
    assert first.state is RunState.TIMED_OUT
    (retry,) = store.list_runs(job_id="nightly", trigger=TriggerKind.RETRY)
    assert (retry.attempt, retry.retry_of, retry.state) == (2, first.id, RunState.SCHEDULED)
    assert retry.scheduled_for == AT3  # serves the same fire time
    assert retry.due_at is not None
    assert AT3 + timedelta(seconds=5) <= retry.due_at <= AT3 + timedelta(seconds=10)
    assert await step(engine) == []  # not before its backoff
    clock.set(retry.due_at)
    await step(engine)
    attempts = sorted((r.attempt, r.state) for r in store.list_runs(job_id="nightly"))
    assert attempts[:2] == [(1, RunState.TIMED_OUT), (2, RunState.TIMED_OUT)]
    third = store.list_runs(job_id="nightly")[0]
    assert third.attempt == 3 and third.due_at is not None
    assert third.due_at - clock() >= timedelta(seconds=10)  # doubled
    clock.set(third.due_at)
    await step(engine)
    assert len(store.list_runs(job_id="nightly")) == 3  # retries = 2: no fourth


async def test_a_permanent_error_is_not_retried(store: Store, clock: Any, tmp_path: Path) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        job(env={"TOKEN": "${CLOCKTOWER_TEST_SURELY_UNDEFINED}"}, retries=3),
        job_id="nightly",
        actor="t",
    )
    clock.set(AT3)
    await step(make_engine(store, clock, tmp_path))
    (run,) = store.list_runs(job_id="nightly")
    assert run.state is RunState.FAILED
    assert "CLOCKTOWER_TEST_SURELY_UNDEFINED" in (run.error or "")


async def test_a_dead_nodes_run_becomes_lost_and_is_retried(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(job(retries=1), job_id="nightly", actor="t")
    clock.set(AT3)
    dead = make_engine(store, clock, tmp_path, node="dead")
    await asyncio.to_thread(dead.fire_due)
    (run,) = dead.claim()
    # the dead node started it, then vanished without a trace
    from clocktower.store import Decision

    store.start(
        run.id,
        node="dead",
        now=AT3,
        lease_until=AT3 + timedelta(seconds=30),
        decide=lambda *a: Decision.start(),
    )
    alive = make_engine(store, clock, tmp_path, node="alive")
    clock.advance(29)
    assert alive.expire_leases() == []
    clock.advance(2)
    (lost,) = alive.expire_leases()
    assert lost.state is RunState.LOST
    (retry,) = store.list_runs(job_id="nightly", trigger=TriggerKind.RETRY)
    clock.set(retry.due_at)
    await step(alive)
    assert store.get_run(retry.id).state is RunState.SUCCEEDED
    assert store.get_run(retry.id).node == "alive"


async def test_manual_trigger_with_env_override(store: Store, clock: Any, tmp_path: Path) -> None:
    clock.set(T0 - timedelta(hours=1))
    service = make_service(store, clock)
    service.create_job(
        job('echo "$GREETING $CLOCKTOWER_TRIGGER"', env={"GREETING": "hi"}),
        job_id="nightly",
        actor="t",
    )
    run = service.trigger_now("nightly", actor="alice", env={"GREETING": "hello"})
    assert run.trigger is TriggerKind.MANUAL
    await step(make_engine(store, clock, tmp_path))
    assert output_text(store, run.id) == "hello manual"
    assert store.list_events(job_id="nightly")[0].actor == "alice"


async def test_manual_trigger_hands_its_payload_to_the_target(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0 - timedelta(hours=1))
    service = make_service(store, clock)
    definition = {"call": "tests.engine.targets:payload", "cron": "0 3 * * *"}
    service.create_job(definition, job_id="send", actor="t")
    service.create_job(job('printf %s "$CLOCKTOWER_PAYLOAD"'), job_id="shell", actor="t")
    sent = {"campaign": 42, "segments": ["a", "b"]}
    python_run = service.trigger_now("send", actor="alice", payload=sent)
    command_run = service.trigger_now("shell", actor="alice", payload=sent)
    await step(make_engine(store, clock, tmp_path))
    assert store.get_run(python_run.id).result == sent  # what the function received
    assert json.loads(output_text(store, command_run.id)) == sent


async def test_manual_trigger_refused_while_running_with_overlap_skip(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    from clocktower.model import Conflict

    engine, first = await _first_run_running(store, clock, tmp_path)
    with pytest.raises(Conflict, match="still running"):
        make_service(store, clock).trigger_now("slow", actor="t")
    engine.cancel_local(first.id, "done")
    await settle(engine)


async def test_manual_trigger_refused_while_one_run_is_already_queued(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    from clocktower.model import Conflict

    engine, first = await _first_run_running(store, clock, tmp_path, overlap="queue")
    (second,) = await step(engine, wait=False)  # the next fire time queues behind it
    for _ in range(500):
        if store.get_run(second.id).state is RunState.SCHEDULED:
            break
        await asyncio.sleep(0.01)
    assert store.get_run(second.id).state is RunState.SCHEDULED
    service = make_service(store, clock)
    with pytest.raises(Conflict, match="already queued"):
        service.trigger_now("slow", actor="t")
    assert store.list_runs(job_id="slow", trigger=TriggerKind.MANUAL) == []
    service.cancel(second.id, actor="t")
    engine.cancel_local(first.id, "done")
    await settle(engine)


async def test_backfill_runs_each_past_fire_time_in_order(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(datetime(2025, 1, 20, 12, 0, tzinfo=UTC))
    service = make_service(store, clock)
    service.create_job(
        {"command": 'echo "$CLOCKTOWER_SCHEDULED_FOR"', "cron": "0 5 * * 0"},
        job_id="weekly",
        actor="t",
    )
    runs = service.backfill(
        "weekly",
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 19, 23, 59, tzinfo=UTC),
        actor="t",
    )
    assert [f"{r.scheduled_for:%m-%d}" for r in runs] == ["01-05", "01-12", "01-19"]
    engine = make_engine(store, clock, tmp_path)
    for _ in range(5):
        await step(engine)
    outputs = [output_text(store, r.id) for r in runs]
    assert outputs == ["2025-01-05T05:00:00Z", "2025-01-12T05:00:00Z", "2025-01-19T05:00:00Z"]


async def test_paused_fire_times_are_not_caught_up_unless_asked(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    service.create_job(job(), job_id="plain", actor="t")
    service.create_job(job(catch_up_paused=True), job_id="eager", actor="t")
    service.pause("plain", actor="t")
    service.pause("eager", actor="t")
    clock.set(datetime(2025, 1, 8, 12, 0, tzinfo=UTC))
    engine = make_engine(store, clock, tmp_path)
    await step(engine)
    assert store.list_runs() == []
    service.resume("plain", actor="t")
    service.resume("eager", actor="t")
    await step(engine)
    assert store.list_runs(job_id="plain") == []
    eager = store.list_runs(job_id="eager")
    assert [r.state for r in eager if r.state is RunState.SUCCEEDED] == [RunState.SUCCEEDED]


@pytest.mark.parametrize("resume", ["resume", "enabled = true", "paused = false"])
async def test_resuming_through_the_definition_skips_the_paused_fire_times_too(
    store: Store, clock: Any, tmp_path: Path, resume: str
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    service.create_job(job(), job_id="plain", actor="t")
    service.pause("plain", actor="t")
    clock.set(datetime(2025, 1, 8, 12, 0, tzinfo=UTC))
    if resume == "resume":
        service.resume("plain", actor="t")
    else:
        key, _, value = resume.partition(" = ")
        service.update_job("plain", {key: value == "true"}, actor="t")
    assert not store.get_job("plain").paused
    await step(make_engine(store, clock, tmp_path))
    assert store.list_runs(job_id="plain") == []  # no run, no missed record


async def test_pausing_a_paused_job_keeps_when_it_was_paused(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    service.create_job(job(catch_up_paused=True), job_id="eager", actor="t")
    service.pause("eager", actor="t")
    clock.set(datetime(2025, 1, 8, 12, 0, tzinfo=UTC))
    service.pause("eager", actor="t")  # pressed again, days later
    assert store.get_job("eager").paused_at == T0


async def test_a_run_created_ahead_does_not_start_once_its_job_is_paused(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """Runs are created up to the lookahead before their instant; pausing the
    job in between stops that fire time too, recorded as skipped. A manual
    run asked for before the pause still runs."""
    clock.set(T0)  # 03:00 is within the lookahead: its run is created now
    service = make_service(store, clock)
    service.create_job(job(), job_id="nightly", actor="t")
    engine = make_engine(store, clock, tmp_path)
    manual = service.trigger_now("nightly", actor="t")
    while await asyncio.to_thread(engine.fire_due):
        pass
    (ahead,) = store.list_runs(job_id="nightly", trigger=TriggerKind.SCHEDULE)
    assert ahead.scheduled_for == AT3 and ahead.state is RunState.SCHEDULED
    service.pause("nightly", actor="t")
    clock.set(AT3)
    await step(engine)
    skipped = store.get_run(ahead.id)
    assert (skipped.state, skipped.error) == (RunState.SKIPPED, "job is paused")
    assert store.get_run(manual.id).state is RunState.SUCCEEDED


async def test_a_jittered_run_due_after_the_pause_does_not_start(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    service.create_job(job(jitter="30m"), job_id="nightly", actor="t")
    engine = make_engine(store, clock, tmp_path)
    clock.set(AT3)
    await step(engine)  # the fire step creates the run, due later by its jitter
    (run,) = store.list_runs(job_id="nightly")
    assert run.due_at is not None and run.due_at > AT3 + timedelta(seconds=5)
    clock.set(AT3 + timedelta(seconds=5))
    service.pause("nightly", actor="t")
    clock.set(run.due_at)
    await step(engine)
    skipped = store.get_run(run.id)
    assert (skipped.state, skipped.error) == (RunState.SKIPPED, "job is paused")


async def test_a_run_claimed_ahead_does_not_start_once_cancelled_or_its_job_deleted(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """Claimed a second before its instant, then cancelled, or its job deleted,
    from another process (which can only ask): at its instant it ends
    cancelled, and its target never runs."""
    clock.set(T0)
    service = make_service(store, clock)
    for name in ("nightly", "weekly"):
        service.create_job(job(f"echo {name} ran"), job_id=name, actor="t")
    engine = make_engine(store, clock, tmp_path)
    claimed = {r.job_id: r for r in await step(engine, wait=False)}
    assert {r.state for r in claimed.values()} == {RunState.PENDING}
    service.delete_job("nightly", actor="alice")
    service.cancel(claimed["weekly"].id, actor="bob")
    clock.set(AT3)
    await settle(engine)
    deleted, cancelled = (store.get_run(claimed[n].id) for n in ("nightly", "weekly"))
    assert (deleted.state, deleted.error) == (RunState.CANCELLED, "job deleted")
    assert (cancelled.state, cancelled.error) == (RunState.CANCELLED, "cancelled by bob")
    assert output_text(store, deleted.id) == output_text(store, cancelled.id) == ""
    assert deleted.started_at is None and cancelled.started_at is None


async def test_a_very_long_line_a_python_target_logs_is_kept_in_pieces(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    """As a command's output is: pieces of at most 64 KiB, so that the output
    cap, which always keeps the newest line, keeps its promise."""
    from clocktower.executors._output import MAX_LINE

    clock.set(T0)
    definition = {"call": "tests.engine.targets:shouts", "cron": "0 3 * * *"}
    make_service(store, clock).create_job(definition, job_id="loud", actor="t")
    clock.set(AT3)
    await step(make_engine(store, clock, tmp_path))
    (run,) = store.list_runs(job_id="loud")
    assert run.state is RunState.SUCCEEDED
    chunks, _ = store.read_output(run.id)
    lines = [text for c in chunks for _, _, text in c.lines]
    assert len(lines) == 4 and all(len(line.encode()) <= MAX_LINE for line in lines)
    assert "".join(lines) == "INFO " + "é" * 100_000  # nothing lost, no character cut


async def test_excluded_dates_are_recorded_as_skipped(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(job(exclude=["2025-01-06"]), job_id="n", actor="t")
    clock.set(AT3)
    await step(make_engine(store, clock, tmp_path))
    (run,) = store.list_runs(job_id="n")
    assert run.state is RunState.SKIPPED and "2025-01-06" in (run.error or "")


async def test_jitter_delays_by_a_stable_offset(store: Store, clock: Any, tmp_path: Path) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(job(jitter="30m"), job_id="n", actor="t")
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path)
    assert await step(engine) == []  # created, but due later
    (run,) = store.list_runs(job_id="n")
    assert run.due_at is not None and AT3 < run.due_at < AT3 + timedelta(minutes=30)
    from clocktower.engine.policies import stable_offset

    assert (run.due_at - AT3).total_seconds() == pytest.approx(stable_offset("n", 1800))
    clock.set(run.due_at)
    await step(engine)
    assert store.get_run(run.id).state is RunState.SUCCEEDED


async def test_after_fires_when_the_upstream_job_succeeds(
    store: Store, clock: Any, tmp_path: Path
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    service.create_job(job(), job_id="extract", actor="t")
    service.create_job({"command": "true", "after": ["extract"]}, job_id="load", actor="t")
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path)
    await step(engine)
    await step(engine)
    (load,) = store.list_runs(job_id="load")
    assert load.trigger is TriggerKind.DEPENDENCY and load.state is RunState.SUCCEEDED


async def test_priority_decides_who_goes_first_when_slots_are_scarce(
    store: Store, clock: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock.set(T0)
    service = make_service(store, clock)
    for name, prio in [("low", 0), ("high", 10), ("mid", 5)]:
        service.create_job(job(priority=prio), job_id=name, actor="t")
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path, max_concurrent_runs=1)
    with caplog.at_level(logging.DEBUG, logger="clocktower.engine"):
        claimed = await step(engine)  # the slot freed by one run goes to the next due
        for _ in range(500):
            if all(r.state is RunState.SUCCEEDED for r in store.list_runs()):
                break
            await asyncio.sleep(0.01)
        await settle(engine)
    assert [r.job_id for r in claimed] == ["high"]
    starts = [
        r.args for r in caplog.records if r.msg == "run %s of %s started (%s, attempt %s, for %s)"
    ]
    assert [args[1] for args in starts if isinstance(args, tuple)] == ["high", "mid", "low"]
    assert all(r.state is RunState.SUCCEEDED for r in store.list_runs())


async def test_cancel_a_running_command(store: Store, clock: Any, tmp_path: Path) -> None:
    engine, first = await _first_run_running(store, clock, tmp_path)
    make_service(store, clock).cancel(first.id, actor="bob")
    engine.apply_cancel_requests()
    await settle(engine)
    run = store.get_run(first.id)
    assert run.state is RunState.CANCELLED


async def test_artifacts_outlive_the_run(store: Store, clock: Any, tmp_path: Path) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        job('echo "rows: 3" > "$CLOCKTOWER_ARTIFACTS/report.txt"'), job_id="n", actor="t"
    )
    clock.set(AT3)
    engine = make_engine(store, clock, tmp_path)
    await step(engine)
    (run,) = store.list_runs(job_id="n")
    assert store.list_artifacts(run.id) == [("report.txt", 8)]
    assert store.get_artifact(run.id, "report.txt") == b"rows: 3\n"
    assert not (engine.settings.artifacts_dir / str(run.id)).exists()
