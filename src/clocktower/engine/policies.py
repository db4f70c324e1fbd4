"""The scheduling policies as pure functions: catch-up, overlap, retries, jitter.

Nothing here reads the clock or the store: the loop passes `now` and the rows,
and gets back what to write. That is what lets the tests pin every policy with
an injected clock and no sleeping.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from clocktower.model import CatchUp, Job, Overlap, Run, RunState, TriggerKind
from clocktower.store import Decision, FirePlan, NewRun
from clocktower.triggers.base import Trigger, to_datetime

# A fire time less late than this is on time: the loop was merely busy. Later
# than this, the fire time passed while nothing was running it (downtime) and
# the catch-up policy decides.
MISFIRE_GRACE = timedelta(seconds=60)

# Safety bound on fire times handled for one job in one fire step; the job's
# next fire time advances past them, so the next step carries on.
MAX_FIRE_TIMES_PER_STEP = 1000


@dataclass(frozen=True, slots=True)
class FireTimes:
    on_time: list[datetime]
    late: list[datetime]  # passed unrun: the catch-up policy decides
    next_fire_at: datetime | None


def stable_offset(job_id: str, bound: float) -> float:
    """A pseudo-random offset in [0, bound) that is the same for a job id on every
    node and every restart (spreads "@hourly" herds without moving around)."""
    if bound <= 0:
        return 0.0
    digest = hashlib.sha256(f"jitter:{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * bound


def collect_fire_times(
    trigger: Trigger, first: datetime, horizon: datetime, now: datetime
) -> FireTimes:
    """The fire times from `first` up to `horizon`, split into on-time and late."""
    on_time: list[datetime] = []
    late: list[datetime] = []
    cursor: float | None = first.timestamp()
    threshold = now - MISFIRE_GRACE
    while cursor is not None and cursor <= horizon.timestamp():
        if len(on_time) + len(late) >= MAX_FIRE_TIMES_PER_STEP:
            break
        instant = to_datetime(cursor)
        (late if instant < threshold else on_time).append(instant)
        cursor = trigger.next_after(cursor)
    return FireTimes(on_time, late, to_datetime(cursor) if cursor is not None else None)


def choose_catch_up(
    job: Job, late: list[datetime], has_on_time: bool, now: datetime
) -> tuple[list[datetime], list[datetime]]:
    """Split late fire times into (run now, record as missed) per `catch_up`."""
    policy = job.spec.policies
    window = policy.catch_up_window
    eligible = [t for t in late if window is None or (now - t).total_seconds() <= window]
    too_old = [t for t in late if t not in eligible] if window is not None else []
    if policy.catch_up is CatchUp.ALL:
        return eligible, too_old
    if policy.catch_up is CatchUp.LATEST and eligible and not has_on_time:
        return eligible[-1:], too_old + eligible[:-1]
    return [], too_old + eligible


def plan_fire(job: Job, trigger: Trigger, *, now: datetime, horizon: datetime) -> FirePlan:
    """What the fire step writes for one due job."""
    if job.next_fire_at is None:
        return FirePlan([], None)
    times = collect_fire_times(trigger, job.next_fire_at, horizon, now)
    # More late fire times follow this step's (a long outage, capped per step):
    # "latest" waits for the step that reaches the last of them.
    more_late = times.next_fire_at is not None and times.next_fire_at < now - MISFIRE_GRACE
    run_late, missed = choose_catch_up(job, times.late, bool(times.on_time) or more_late, now)
    runs = [fire_run(job, trigger, t, now) for t in sorted(run_late + times.on_time)]
    if len(run_late) > 1:
        for run in runs:
            run.queued = True  # a catch-up series: one at a time, oldest first
    if missed:
        runs.insert(0, missed_record(job, sorted(missed), now))
    return FirePlan(runs, times.next_fire_at)


def fire_run(job: Job, trigger: Trigger, fire_time: datetime, now: datetime) -> NewRun:
    policy = job.spec.policies
    reason = trigger.skip_reason(fire_time.timestamp())
    if reason is not None:
        return NewRun(
            job_id=job.id,
            scheduled_for=fire_time,
            trigger=TriggerKind.SCHEDULE,
            state=RunState.SKIPPED,
            fire_key="schedule",
            error=reason,
            finished_at=now,
            priority=policy.priority,
        )
    due = fire_time + timedelta(seconds=stable_offset(job.id, policy.jitter))
    return NewRun(
        job_id=job.id,
        scheduled_for=fire_time,
        due_at=max(due, fire_time),
        trigger=TriggerKind.SCHEDULE,
        fire_key="schedule",
        priority=policy.priority,
    )


def missed_record(job: Job, missed: list[datetime], now: datetime) -> NewRun:
    count = len(missed)
    span = f"{missed[0]:%Y-%m-%d %H:%M:%S}Z" + (
        f" to {missed[-1]:%Y-%m-%d %H:%M:%S}Z" if count > 1 else ""
    )
    return NewRun(
        job_id=job.id,
        scheduled_for=missed[0],
        trigger=TriggerKind.SCHEDULE,
        state=RunState.MISSED,
        fire_key="missed",
        error=f"{count} fire time{'s' if count > 1 else ''} missed ({span}); "
        f"catch_up = {job.spec.policies.catch_up}",
        missed_count=count,
        missed_until=missed[-1],
        finished_at=now,
        priority=job.spec.policies.priority,
    )


def first_fire_after(trigger: Trigger, instant: datetime) -> datetime | None:
    """The first fire time strictly after `instant`: creating, editing or
    resuming a job never fires it by itself."""
    ts = trigger.next_after(instant.timestamp())
    return to_datetime(ts) if ts is not None else None


def resume_from(job: Job, now: datetime) -> datetime:
    """Where the fire times continue when a paused job resumes: from now, or from
    the pause if the job asks to catch up on what it missed while paused."""
    if job.spec.policies.catch_up_paused and job.paused_at is not None:
        return job.paused_at
    return now


# --------------------------------------------------------------------------- overlap


def is_catch_up(run: Run) -> bool:
    """A scheduled run created after its fire time had long passed."""
    return (
        run.trigger is TriggerKind.SCHEDULE
        and run.created_at is not None
        and run.created_at - run.scheduled_for > MISFIRE_GRACE
    )


def is_paused_fire_time(job: Job, run: Run) -> bool:
    """A run of the schedule due at or after the job was paused (its fire time,
    or later with jitter). It may exist already (runs are created ahead of
    their instant): it does not start. Manual, retry, backfill and dependency
    runs are asked for explicitly."""
    return (
        job.paused
        and run.trigger is TriggerKind.SCHEDULE
        and job.paused_at is not None
        and (run.due_at or run.scheduled_for) >= job.paused_at
    )


def decide_start(job: Job, run: Run, running: list[Run], queued: int) -> Decision:
    """Whether a run whose instant has come may start, given its job's running runs."""
    if job.broken:
        return Decision.skip(f"job is broken: {job.broken}")
    if is_paused_fire_time(job, run):
        return Decision.skip("job is paused")
    if not running:
        return Decision.start()
    policy = job.spec.policies
    ids = ", ".join(str(r.id) for r in running)
    if run.trigger is TriggerKind.BACKFILL or is_catch_up(run):
        # A backfill or a catch-up is a series: each run waits for the one before.
        return Decision("queue", f"{run.trigger} waits for run {ids}")
    match policy.overlap:
        case Overlap.ALLOW:
            if len(running) < policy.max_concurrency:
                return Decision.start()
            return Decision.skip(
                f"max_concurrency {policy.max_concurrency} reached (running: {ids})"
            )
        case Overlap.QUEUE:
            if queued >= 1:
                return Decision.skip(f"run {ids} still running and one run already queued")
            return Decision("queue", f"waiting for run {ids}")
        case Overlap.REPLACE:
            return Decision("replace", f"replaces run {ids}")
        case _:
            return Decision.skip(f"previous run {ids} still running (overlap = skip)")


# --------------------------------------------------------------------------- retries


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so
    retries of many runs failing together spread out but never come early."""
    delay = min(cap, base * 2.0 ** (attempt - 1))
    return delay / 2 + rand() * delay / 2


def retry_for(
    job: Job,
    run: Run,
    now: datetime,
    *,
    permanent: bool = False,
    rand: Callable[[], float] = random.random,
) -> list[NewRun]:
    """The retry a finished run earns, if any: failed, timed_out or lost, not a
    permanent error (retrying cannot help), and attempts left."""
    policy = job.spec.policies
    if permanent or not run.state.retryable or run.attempt > policy.retries or job.paused:
        return []
    delay = backoff(run.attempt, policy.retry_delay, policy.retry_max_delay, rand)
    return [
        NewRun(
            job_id=run.job_id,
            scheduled_for=run.scheduled_for,
            due_at=now + timedelta(seconds=delay),
            trigger=TriggerKind.RETRY,
            attempt=run.attempt + 1,
            retry_of=run.id,
            priority=policy.priority,
            payload=run.payload,
            env=run.env,
            queued=run.queued,  # a series' run is retried in the series, not skipped by it
        )
    ]
