"""The vocabulary of Clocktower: jobs, targets, policies, runs and their states.

Plain dataclasses and enums, no I/O. Every shape that is stored is JSON (never
pickle) and carries a version, so an upgrade never has to delete a job.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

SPEC_VERSION = 1

JOB_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,126}[a-z0-9])?$")


class RunState(enum.StrEnum):
    SCHEDULED = "scheduled"  # created, waiting for its instant
    PENDING = "pending"  # claimed by a node, about to start
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"  # its node stopped renewing the lease
    SKIPPED = "skipped"  # a policy chose not to run it; `error` says why
    MISSED = "missed"  # fire times that passed unrun (one record: count and range)

    @property
    def final(self) -> bool:
        return self not in (RunState.SCHEDULED, RunState.PENDING, RunState.RUNNING)

    @property
    def retryable(self) -> bool:
        return self in (RunState.FAILED, RunState.TIMED_OUT, RunState.LOST)


ACTIVE_STATES = (RunState.PENDING, RunState.RUNNING)
FINAL_STATES = tuple(s for s in RunState if s.final)


class TriggerKind(enum.StrEnum):
    """Why a run exists."""

    SCHEDULE = "schedule"  # a fire time of the job's trigger (catch-up runs included)
    MANUAL = "manual"  # someone pressed "run now"
    RETRY = "retry"  # attempt + 1 of a failed run
    BACKFILL = "backfill"  # a past fire time, asked for explicitly
    DEPENDENCY = "dependency"  # a job listed in `after` succeeded


class CatchUp(enum.StrEnum):
    LATEST = "latest"
    ALL = "all"
    NONE = "none"


class Overlap(enum.StrEnum):
    SKIP = "skip"
    QUEUE = "queue"
    ALLOW = "allow"
    REPLACE = "replace"


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class CommandTarget:
    """A shell command line run with /bin/sh -c in its own process group."""

    command: str
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # values may hold ${VAR}
    memory_limit: int | None = None  # bytes (RLIMIT_AS)
    kind: Literal["command"] = "command"


@dataclass(frozen=True, slots=True)
class HttpTarget:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)  # values may hold ${VAR}
    body: str | None = None
    json: Any = None
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    success_field: str | None = None  # a JSON field of the response that must be true
    kind: Literal["http"] = "http"


@dataclass(frozen=True, slots=True)
class PythonTarget:
    call: str  # "package.module:function"
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    isolation: Literal["thread", "process"] = "thread"
    memory_limit: int | None = None  # bytes, only with isolation = "process"
    kind: Literal["python"] = "python"


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    name: str
    job: str | None = None  # another job's id, or
    target: Target | None = None  # an inline target
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class WorkflowTarget:
    steps: tuple[WorkflowStep, ...]
    parallel: bool = False
    max_parallel: int = 4
    continue_on_failure: bool = False
    kind: Literal["workflow"] = "workflow"


Target = CommandTarget | HttpTarget | PythonTarget | WorkflowTarget

# --------------------------------------------------------------------------- triggers


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """When a job is due, as the user wrote it.

    `kind` is "cron", "every", "at" or "schedule" (a readable form such as
    "daily at 03:00", compiled by `clocktower.triggers`).
    """

    kind: Literal["cron", "every", "at", "schedule"]
    expr: str
    tz: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    exclude: tuple[date, ...] = ()


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True, slots=True)
class Policies:
    timeout: float = 600.0  # seconds, like Heroku's ten minutes
    kill_grace: float = 10.0  # SIGTERM -> SIGKILL
    retries: int = 0
    retry_delay: float = 30.0  # first backoff; doubled each attempt
    retry_max_delay: float = 3600.0
    overlap: Overlap = Overlap.SKIP
    max_concurrency: int = 1  # with overlap = "allow"
    catch_up: CatchUp = CatchUp.LATEST
    catch_up_window: float | None = None  # seconds; None = unbounded
    catch_up_paused: bool = False  # also catch up fire times passed while paused
    jitter: float = 0.0  # seconds; a stable offset derived from the job id
    priority: int = 0  # higher goes first when slots are scarce
    output_cap: int = 1 << 20  # bytes kept per run (head and tail)


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True, slots=True)
class JobSpec:
    id: str
    target: Target
    trigger: TriggerSpec | None = None  # None: runs only when triggered (or `after`)
    policies: Policies = field(default_factory=Policies)
    description: str = ""
    tags: tuple[str, ...] = ()
    after: tuple[str, ...] = ()  # fire when each of these jobs' runs succeeds
    env: Mapping[str, str] = field(default_factory=dict)  # job-wide, for every target kind
    source: str = "api"  # "file:<path>", "api", "cli", "python"

    def replace(self, **changes: Any) -> JobSpec:
        return dataclasses.replace(self, **changes)


@dataclass(slots=True)
class Job:
    """A job as stored: its spec plus the state the scheduler keeps."""

    spec: JobSpec
    paused: bool = False
    broken: str | None = None  # why the stored definition cannot run (kept, never deleted)
    next_fire_at: datetime | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    paused_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.spec.id


# --------------------------------------------------------------------------- runs


@dataclass(slots=True)
class Run:
    id: int
    job_id: str
    scheduled_for: datetime  # the fire time it serves (UTC)
    trigger: TriggerKind
    state: RunState
    attempt: int = 1
    priority: int = 0
    due_at: datetime | None = None  # when it may start (fire time + jitter, or retry time)
    retry_of: int | None = None
    node: str | None = None
    lease_until: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    progress_done: float | None = None
    progress_total: float | None = None
    payload: Any = None
    env: Mapping[str, str] = field(default_factory=dict)
    missed_count: int | None = None  # for `missed` records
    missed_until: datetime | None = None  # last fire time a `missed` record covers
    output_bytes: int = 0
    result: Any = None  # a workflow summary, a python return value (JSON)
    cancel_requested: bool = False  # asked to stop (cancel, job deleted, replaced)
    queued: bool = False  # one of a series (backfill, catch-up, overlap = queue): waits its turn

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt serving one fire time of one job."""
        return f"{self.job_id}:{_key_instant(self.scheduled_for)}"

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


# --------------------------------------------------------------------------- errors


class ClocktowerError(Exception):
    """Base of every error Clocktower raises on purpose."""


class InvalidSpec(ClocktowerError, ValueError):
    """A job definition or setting is wrong; says where (file, job, field) and why."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        job: str | None = None,
        file: str | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.job = job
        self.file = file
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.job:
            where.append(f"job {self.job!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def located(
        self, *, file: str | None = None, job: str | None = None, field_prefix: str | None = None
    ) -> InvalidSpec:
        """The same error, placed in a file / job / enclosing field."""
        fld = self.field
        if field_prefix:
            fld = f"{field_prefix}.{fld}" if fld else field_prefix
        return InvalidSpec(self.message, field=fld, job=self.job or job, file=self.file or file)


class JobNotFound(ClocktowerError, LookupError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r}")


class RunNotFound(ClocktowerError, LookupError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"no run {run_id}")


class Conflict(ClocktowerError):
    """The operation contradicts the current state (overlap policy, existing id, …)."""


@functools.lru_cache(maxsize=1024)
def _key_instant(instant: datetime) -> str:
    """A fire time as idempotency keys spell it. Cached: many runs share one
    instant (every job due at a minute's start), and formatting costs more
    than the rest of a short run's context."""
    return instant.strftime("%Y%m%dT%H%M%S.%fZ")


def validate_job_id(job_id: str) -> str:
    if not JOB_ID_RE.match(job_id):
        raise InvalidSpec(
            f"{job_id!r} is not a valid job id: use lowercase letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit (at most 128 characters)",
            field="id",
            job=job_id,
        )
    return job_id
