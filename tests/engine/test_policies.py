"""Retry backoff with jitter: the decision alone, with the randomness injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clocktower.engine.policies import retry_for
from clocktower.model import CommandTarget, Job, JobSpec, Policies, Run, RunState, TriggerKind

NOW = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)


def failed_run(attempt: int) -> Run:
    return Run(
        id=7,
        job_id="flaky",
        scheduled_for=NOW - timedelta(minutes=1),
        trigger=TriggerKind.SCHEDULE if attempt == 1 else TriggerKind.RETRY,
        attempt=attempt,
        state=RunState.FAILED,
    )


def flaky(**policies: object) -> Job:
    spec = JobSpec(
        id="flaky",
        target=CommandTarget(command="false"),
        policies=Policies(**policies),  # type: ignore[arg-type]
    )
    return Job(spec=spec, version=1)


@pytest.mark.parametrize(
    ("attempt", "rand", "seconds"),
    [
        (1, 0.0, 5.0),  # base 10 s: half of it fixed ...
        (1, 1.0, 10.0),  # ... and up to the other half at random
        (2, 0.0, 10.0),  # doubled for each attempt
        (3, 0.5, 30.0),
        (6, 1.0, 60.0),  # never more than retry_max_delay
        (6, 0.0, 30.0),
    ],
)
def test_a_retry_waits_exponentially_longer_with_jitter(
    attempt: int, rand: float, seconds: float
) -> None:
    job = flaky(retries=9, retry_delay=10.0, retry_max_delay=60.0)
    (retry,) = retry_for(job, failed_run(attempt), NOW, rand=lambda: rand)
    assert retry.due_at == NOW + timedelta(seconds=seconds)
    assert (retry.attempt, retry.retry_of, retry.trigger) == (attempt + 1, 7, TriggerKind.RETRY)
    assert retry.scheduled_for == NOW - timedelta(minutes=1)  # serves the same fire time


def test_no_retry_when_attempts_are_spent_or_the_error_is_permanent() -> None:
    job = flaky(retries=2, retry_delay=10.0)
    assert retry_for(job, failed_run(3), NOW) == []
    assert retry_for(job, failed_run(1), NOW, permanent=True) == []
    succeeded = failed_run(1)
    succeeded.state = RunState.SUCCEEDED
    assert retry_for(job, succeeded, NOW) == []


@pytest.mark.parametrize(("catch_up", "runs"), [("latest", 2), ("none", 2), ("all", 4321)])
def test_a_long_outage_is_caught_up_once_across_capped_steps(catch_up: str, runs: int) -> None:
    """Three days of a job every minute: more fire times than one step takes.
    The last minute's two are on time and run; of the late ones "latest" runs
    none (an on-time run follows), not the last of every step."""
    from clocktower.engine.policies import plan_fire
    from clocktower.model import CatchUp, TriggerSpec
    from clocktower.triggers import compile_trigger

    spec = JobSpec(
        id="minutely",
        target=CommandTarget(command="true"),
        trigger=TriggerSpec(kind="cron", expr="* * * * *"),
        policies=Policies(catch_up=CatchUp(catch_up)),
    )
    down_since = NOW - timedelta(days=3)
    job = Job(spec=spec, next_fire_at=down_since)
    trigger = compile_trigger(spec.trigger)  # type: ignore[arg-type]
    created = []
    while job.next_fire_at is not None and job.next_fire_at <= NOW:
        plan = plan_fire(job, trigger, now=NOW, horizon=NOW)
        created += plan.runs
        job = Job(spec=spec, next_fire_at=plan.next_fire_at)
    ran = [r for r in created if r.state is RunState.SCHEDULED]
    missed = sum(r.missed_count or 0 for r in created if r.state is RunState.MISSED)
    assert len(ran) == runs
    assert len(ran) + missed == 3 * 24 * 60 + 1  # every fire time is run or counted missed
    if catch_up != "all":
        assert [r.scheduled_for for r in ran] == [NOW - timedelta(minutes=1), NOW]
