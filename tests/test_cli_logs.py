"""`clocktower logs RUN [-f]`: a run's output, and following it until it ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from clocktower import cli
from clocktower.engine.policies import decide_start
from clocktower.model import CommandTarget, JobSpec, RunState, TriggerKind
from clocktower.service import Service
from clocktower.store import NewRun, RunResult, Store
from clocktower.store.output import Output
from clocktower.store.writes import Finish

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
NODE = "node-a"

runner = CliRunner()


def running_run(store: Store) -> int:
    store.put_job(
        JobSpec(id="report", target=CommandTarget(command="true")), now=T0, next_fire_at=None
    )
    new = NewRun(job_id="report", scheduled_for=T0, trigger=TriggerKind.MANUAL)
    (run,) = store.create_runs([new], now=T0)
    store.claim(node=NODE, horizon=T0, limit=1, lease_until=T0 + timedelta(minutes=1))
    lease = T0 + timedelta(minutes=1)
    started = store.start(run.id, node=NODE, now=T0, lease_until=lease, decide=decide_start)
    assert started is not None and started.started
    return run.id


def prints(store: Store, run_id: int, text: str, *, ends: bool = False) -> None:
    """What the run's node writes: a line of output, with the outcome if `ends`."""
    output = Output(run_id, [(T0.timestamp(), "stdout", text)], cap=1 << 20)
    finishes = [Finish(run_id, RunResult(RunState.SUCCEEDED), T0)] if ends else []
    store.write(node=NODE, now=T0, outputs=[output], finishes=finishes)


class EndsBetweenReads(Service):
    """A service whose run prints its last line and ends right after the
    follower's first read of output that finds nothing new: the moment a
    follower that reads output before the run's state misses the last line."""

    def __init__(self, store: Store, run_id: int) -> None:
        super().__init__(store)
        self.run_id = run_id
        self.ended = False

    def output(self, run_id: int, *, after: int = 0) -> Any:
        read = super().output(run_id, after=after)
        if not self.ended and not read[0] and after > 0:
            self.ended = True
            prints(self.store, self.run_id, "end", ends=True)
        return read


def test_follow_prints_the_last_line_of_a_run_that_ends_between_two_reads(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = running_run(store)
    prints(store, run_id, "start")
    service = EndsBetweenReads(store, run_id)
    monkeypatch.setattr(cli, "open_service", lambda database, config=None: service)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the follower's pause

    result = runner.invoke(cli.app, ["logs", str(run_id), "--follow"])

    assert result.exit_code == 0, result.output
    assert service.ended
    assert result.stdout.splitlines() == ["start", "end"]


def test_logs_without_follow_prints_what_is_stored_and_returns(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = running_run(store)
    prints(store, run_id, "first")
    prints(store, run_id, "second")
    monkeypatch.setattr(cli, "open_service", lambda database, config=None: Service(store))

    result = runner.invoke(cli.app, ["logs", str(run_id)])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["first", "second"]
