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
