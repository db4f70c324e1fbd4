"""Rows to model objects and back, and the shapes the store's callers hand it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clocktower.model import (
    CommandTarget,
    InvalidSpec,
    Job,
    JobSpec,
    Run,
    RunState,
    TriggerKind,
)


@dataclass(slots=True)
class NewRun:
    """A run the engine or the service asks the store to create."""

    job_id: str
    scheduled_for: datetime
    trigger: TriggerKind
    due_at: datetime | None = None  # defaults to scheduled_for
    state: RunState = RunState.SCHEDULED
    fire_key: str | None = None  # "schedule" / "missed": unique per (job, fire time)
    attempt: int = 1
    retry_of: int | None = None
    priority: int = 0
    error: str | None = None
    payload: Any = None
    env: Mapping[str, str] = field(default_factory=dict)
    missed_count: int | None = None
    missed_until: datetime | None = None
    finished_at: datetime | None = None  # set for records born final (skipped, missed)
    queued: bool = False  # one of a series (backfill, catch-up): runs after the ones before


@dataclass(slots=True)
class FirePlan:
    """What the fire step does for one due job: the runs to insert and where the
    job's next fire time moves to (None: the trigger has no more fire times)."""

    runs: list[NewRun]
    next_fire_at: datetime | None


@dataclass(slots=True)
class Decision:
    """What starting a run should do, given the job's overlap policy."""

    action: str  # "start", "skip", "queue", "replace", "cancel"
    reason: str | None = None

    @classmethod
    def start(cls) -> Decision:
        return cls("start")

    @classmethod
    def skip(cls, reason: str) -> Decision:
        return cls("skip", reason)

    @classmethod
    def cancel(cls, reason: str) -> Decision:
        return cls("cancel", reason)


@dataclass(slots=True)
class OutputChunk:
    id: int
    part: str  # "head" or "tail"
    lines: list[tuple[float, str, str]]  # (epoch seconds, stream, text)


class SpecCache:
    """Parsed definitions by (job, version, last update): reading a stored spec
    back into a `JobSpec` costs far more than the query that fetched it, and
    the fire step reads the same due jobs every time they fire. A job's
    version changes whenever its definition does. Bounded: when full, it
    starts over."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._specs: dict[tuple[str, int, datetime], tuple[JobSpec, str | None]] = {}

    def has(self, row: Mapping[Any, Any]) -> bool:
        """Whether `row`'s definition is parsed already (the row may lack `spec`)."""
        return (row["id"], row["version"], row["updated_at"]) in self._specs

    def parse(self, row: Mapping[Any, Any]) -> tuple[JobSpec, str | None]:
        key = (row["id"], row["version"], row["updated_at"])
        found = self._specs.get(key)
        if found is None:
            if len(self._specs) >= self.size:
                self._specs.clear()
            found = self._specs[key] = parse_stored(row)
        return found


def parse_stored(row: Mapping[Any, Any]) -> tuple[JobSpec, str | None]:
    """A row's definition, and why it cannot be read (None when it can)."""
    from clocktower.spec import job_from_stored

    try:
        return job_from_stored(row["spec"]), None
    except InvalidSpec as exc:
        # Kept, never deleted: the row stays and the job shows as broken.
        spec = JobSpec(id=row["id"], target=CommandTarget(command=""))
        return spec, f"stored definition cannot be read: {exc}"


def job_from_row(row: Mapping[Any, Any], cache: SpecCache | None = None) -> Job:
    spec, unreadable = cache.parse(row) if cache is not None else parse_stored(row)
    broken = row["broken"] or unreadable
    return Job(
        spec=spec,
        paused=bool(row["paused"]),
        broken=broken,
        next_fire_at=row["next_fire_at"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        paused_at=row["paused_at"],
    )


def run_from_row(row: Mapping[Any, Any]) -> Run:
    return Run(
        id=row["id"],
        job_id=row["job_id"],
        scheduled_for=row["scheduled_for"],
        trigger=TriggerKind(row["trigger"]),
        state=RunState(row["state"]),
        attempt=row["attempt"],
        priority=row["priority"],
        due_at=row["due_at"],
        retry_of=row["retry_of"],
        node=row["node"],
        lease_until=row["lease_until"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        exit_code=row["exit_code"],
        http_status=row["http_status"],
        error=row["error"],
        progress_done=row["progress_done"],
        progress_total=row["progress_total"],
        payload=row["payload"],
        env=row["env"] or {},
        missed_count=row["missed_count"],
        missed_until=row["missed_until"],
        output_bytes=row["output_bytes"],
        result=row["result"],
        cancel_requested=bool(row.get("cancel_requested")),
        queued=bool(row.get("queued")),
    )


def new_run_values(new: NewRun, now: datetime) -> dict[str, Any]:
    return {
        "job_id": new.job_id,
        "scheduled_for": new.scheduled_for,
        "due_at": new.due_at or new.scheduled_for,
        "fire_key": new.fire_key,
        "trigger": str(new.trigger),
        "attempt": new.attempt,
        "retry_of": new.retry_of,
        "state": str(new.state),
        "priority": new.priority,
        "error": new.error,
        "payload": new.payload,
        "env": dict(new.env) or None,
        "missed_count": new.missed_count,
        "missed_until": new.missed_until,
        "created_at": now,
        "finished_at": new.finished_at,
        "queued": new.queued,
    }


def joined(values: tuple[str, ...]) -> str:
    """ ",a,b," so that a LIKE '%,a,%' filter finds one exact member."""
    return f",{','.join(values)}," if values else ""
