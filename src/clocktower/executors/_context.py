"""The context object a Python target receives (as a parameter named `ctx`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clocktower.executors.base import FireContext
from clocktower.model import TriggerKind

ProgressFn = Callable[[float, float | None], None]
WriteFn = Callable[[str], None]

LOG_FORMAT = "%(levelname)s %(message)s"
_STOP_LOCK = threading.Lock()  # creating a run's stop Event once, from any thread


class _WriteHandler(logging.Handler):
    def __init__(self, write: WriteFn) -> None:
        super().__init__()
        self._write = write
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:
            self.handleError(record)


def run_logger(job_id: str, write: WriteFn) -> logging.Logger:
    """A logger whose records become the run's `log` output (INFO and above by default).

    Built directly rather than with `logging.getLogger`, which would keep one
    logger per run alive for the life of the server. It has no parent, so
    records stay in the run's output instead of also reaching the server's log.
    """
    logger = logging.Logger(f"clocktower.job.{job_id}", logging.INFO)
    logger.addHandler(_WriteHandler(write))
    return logger


@dataclass(eq=False)
class RunContext:
    """What a Python target knows about its run.

    Declare a parameter named `ctx` (or annotated `RunContext`) to receive it.
    `log` is a logger whose records appear in the run's output; `progress()`
    updates the run's progress bar. `should_stop()` turns true when the run
    timed out or was cancelled: a synchronous function in a thread cannot be
    interrupted, so a long loop should check it.
    """

    job_id: str
    run_id: int
    attempt: int
    scheduled_for: datetime  # UTC: the fire time this run serves
    idempotency_key: str  # the same for every attempt at one fire time
    trigger: TriggerKind
    payload: Any
    env: Mapping[str, str]
    _artifacts: Path = field(repr=False)
    _write_log: WriteFn = field(repr=False)
    _report: ProgressFn = field(repr=False)
    _log: logging.Logger | None = field(default=None, repr=False)
    # A flag, and an Event only once a function waits on it: most never do,
    # and an Event costs more than a short function.
    _stopped: bool = field(default=False, repr=False)
    _stop: threading.Event | None = field(default=None, repr=False)

    @property
    def log(self) -> logging.Logger:
        """A logger whose records become the run's `log` output (built when
        first used: most functions never log)."""
        if self._log is None:
            self._log = run_logger(self.job_id, self._write_log)
        return self._log

    @property
    def artifacts_dir(self) -> Path:
        """The folder whose files are kept with the run; created when first asked
        for (most runs leave no files, and a folder per run costs more than a
        short function)."""
        self._artifacts.mkdir(parents=True, exist_ok=True)
        return self._artifacts

    def progress(self, done: float, total: float | None = None) -> None:
        self._report(float(done), None if total is None else float(total))

    def should_stop(self) -> bool:
        return self._stopped

    def wait_stop(self, timeout: float | None = None) -> bool:
        """Sleep until the run is asked to stop (or `timeout` passes); True if asked."""
        with _STOP_LOCK:
            if self._stop is None:
                self._stop = threading.Event()
                if self._stopped:
                    self._stop.set()
            stop = self._stop
        return stop.wait(timeout)

    def request_stop(self) -> None:
        with _STOP_LOCK:
            self._stopped = True
            if self._stop is not None:
                self._stop.set()

    @classmethod
    def build(
        cls, fire: FireContext, env: Mapping[str, str], report: ProgressFn, write_log: WriteFn
    ) -> RunContext:
        return cls(
            job_id=fire.job_id,
            run_id=fire.run_id,
            attempt=fire.attempt,
            scheduled_for=fire.scheduled_for,
            idempotency_key=fire.idempotency_key,
            trigger=fire.trigger,
            payload=fire.payload,
            env=dict(env),
            _artifacts=fire.artifacts_dir,
            _write_log=write_log,
            _report=report,
        )


def fire_to_json(fire: FireContext, env: Mapping[str, str]) -> dict[str, Any]:
    """The fire context as JSON, for a child process (the payload must be JSON already)."""
    return {
        "job_id": fire.job_id,
        "run_id": fire.run_id,
        "attempt": fire.attempt,
        "scheduled_for": fire.scheduled_for.isoformat(),
        "idempotency_key": fire.idempotency_key,
        "trigger": str(fire.trigger),
        "artifacts_dir": str(fire.artifacts_dir),
        "payload": fire.payload,
        "env": dict(env),
    }


def fire_from_json(data: Mapping[str, Any]) -> tuple[FireContext, dict[str, str]]:
    fire = FireContext(
        job_id=data["job_id"],
        run_id=data["run_id"],
        attempt=data["attempt"],
        scheduled_for=datetime.fromisoformat(data["scheduled_for"]),
        idempotency_key=data["idempotency_key"],
        trigger=TriggerKind(data["trigger"]),
        artifacts_dir=Path(data["artifacts_dir"]),
        payload=data["payload"],
    )
    return fire, dict(data["env"])
