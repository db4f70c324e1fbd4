"""The interface between the engine and the code that runs one target.

An executor runs one target once and says how it went. It knows nothing of
schedules, retries or the store: the engine owns those. Output and progress go
to an `OutputSink`, which the engine batches into the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from clocktower.model import RunState, Target, TriggerKind

Stream = Literal["stdout", "stderr", "log"]


@dataclass(frozen=True, slots=True)
class FireContext:
    """What a run knows about itself; given to every target."""

    job_id: str
    run_id: int
    attempt: int
    scheduled_for: datetime  # UTC
    idempotency_key: str
    trigger: TriggerKind
    artifacts_dir: Path  # files written here are kept with the run
    payload: Any = None
    env: Mapping[str, str] = field(default_factory=dict)  # job env + manual override

    @property
    def scheduled_for_iso(self) -> str:
        return self.scheduled_for.strftime("%Y-%m-%dT%H:%M:%SZ")

    def as_env(self) -> dict[str, str]:
        """The CLOCKTOWER_* variables a command sees."""
        env = {
            "CLOCKTOWER_JOB": self.job_id,
            "CLOCKTOWER_RUN_ID": str(self.run_id),
            "CLOCKTOWER_ATTEMPT": str(self.attempt),
            "CLOCKTOWER_SCHEDULED_FOR": self.scheduled_for_iso,
            "CLOCKTOWER_IDEMPOTENCY_KEY": self.idempotency_key,
            "CLOCKTOWER_TRIGGER": str(self.trigger),
            "CLOCKTOWER_ARTIFACTS": str(self.artifacts_dir),
        }
        if self.payload is not None:
            import json

            env["CLOCKTOWER_PAYLOAD"] = json.dumps(self.payload)
        return env

    def as_headers(self) -> dict[str, str]:
        """The same facts as HTTP headers."""
        return {
            "Idempotency-Key": self.idempotency_key,
            "X-Clocktower-Job": self.job_id,
            "X-Clocktower-Run-Id": str(self.run_id),
            "X-Clocktower-Attempt": str(self.attempt),
            "X-Clocktower-Scheduled-For": self.scheduled_for_iso,
            "X-Clocktower-Trigger": str(self.trigger),
        }


class OutputSink(Protocol):
    """Where an executor sends what the target prints and how far it got."""

    def write(self, stream: Stream, text: str) -> None:
        """One or more complete lines (without the trailing newline)."""
        ...

    def progress(self, done: float, total: float | None) -> None: ...


@dataclass(slots=True)
class Outcome:
    """How one execution ended."""

    state: RunState  # SUCCEEDED, FAILED, TIMED_OUT or CANCELLED
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    permanent: bool = False  # retrying cannot help (bad URL, import error, …)
    result: Any = None  # JSON-able: a python return value, a workflow summary

    @classmethod
    def failed(cls, error: str, *, permanent: bool = False) -> Outcome:
        """A failure before or around the target, with whether retrying can help."""
        return cls(RunState.FAILED, error=error, permanent=permanent)


class Executor(Protocol):
    """Runs one kind of target.

    Contract: `execute` returns an Outcome for every ending it can observe,
    including its own timeout (state TIMED_OUT, after SIGTERM to the whole
    process group and SIGKILL `kill_grace` seconds later). When the task running
    it is cancelled, it stops the target the same way and re-raises
    CancelledError; the engine records the run as cancelled.
    """

    kind: str

    async def execute(
        self,
        target: Target,
        ctx: FireContext,
        sink: OutputSink,
        *,
        timeout: float,  # noqa: ASYNC109 - the executor owns its kill sequence
        kill_grace: float,
    ) -> Outcome: ...
