"""The operations every interface shares: the CLI, the REST API, the dashboard
and the Python API all call these, so they validate and record the same way.

Each change is written to the audit trail with the actor that made it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from clocktower.config import ConfigError
from clocktower.engine.engine import Clock, utcnow
from clocktower.engine.policies import MISFIRE_GRACE, decide_start, first_fire_after, resume_from
from clocktower.executors._pycall import TargetError, resolve
from clocktower.model import (
    Conflict,
    InvalidSpec,
    Job,
    JobSpec,
    Policies,
    PythonTarget,
    Run,
    RunState,
    TriggerKind,
)
from clocktower.spec import job_to_mapping, parse_job
from clocktower.spec_targets import parse_env
from clocktower.store import NewRun, OutputChunk, Store
from clocktower.triggers import compile_trigger
from clocktower.triggers.base import Trigger, fire_times, to_datetime

MAX_BACKFILL = 10_000

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class ReconcileReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)  # removed from the file
    broken: dict[str, str] = field(default_factory=dict)


def _changes_store(method: Callable[P, R]) -> Callable[P, R]:
    """Count the operation in `Service.changes` once it has returned (or failed
    part way): the response caches read that count to see this process's own
    changes at once (see `clocktower.api.cache`)."""

    @functools.wraps(method)
    def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        finally:
            service = args[0]
            assert isinstance(service, Service)
            service._count_change()

    return counted


CANNOT_IMPORT = "cannot import"  # how every reason `broken_reason` gives starts


def missing_module(call: str) -> str | None:
    """Why the module of `call` cannot be found from this process (None: it can);
    looked up without importing it."""
    module = call.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return f"{CANNOT_IMPORT} {module!r}: {exc}"
    return None if found is not None else f"{CANNOT_IMPORT} {module!r}: no such module"


class Service:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = utcnow,
        default_tz: str = "UTC",
        defaults: Policies | None = None,
        checks_imports: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        # Whether this process can tell if a Python target imports: the server's
        # can (its sys.path is the one the target runs with); a CLI command's,
        # started from any folder, cannot, and leaves that to the server.
        self.checks_imports = checks_imports
        self.default_tz = default_tz
        self.defaults = defaults or Policies()
        self._changes = 0
        self._changes_lock = threading.Lock()

    @property
    def changes(self) -> int:
        """How many changing operations this object has completed: it moves
        after each, once its writes are committed."""
        return self._changes

    def _count_change(self) -> None:
        with self._changes_lock:
            self._changes += 1

    # ================================================================ jobs

    def parse(self, data: Mapping[str, Any], *, job_id: str, source: str = "api") -> JobSpec:
        """Validate a job definition (raises InvalidSpec naming the field)."""
        return parse_job(
            data, job_id=job_id, defaults=self.defaults, source=source, default_tz=self.default_tz
        ).spec

    @_changes_store
    def create_job(
        self,
        data: Mapping[str, Any],
        *,
        job_id: str,
        actor: str,
        source: str = "api",
        replace: bool = False,
    ) -> tuple[Job, bool]:
        """Create a job. The same id with the same definition returns the existing
        job (idempotent); another definition is a Conflict unless `replace`.
        Returns the job and whether anything changed."""
        definition = parse_job(
            data, job_id=job_id, defaults=self.defaults, source=source, default_tz=self.default_tz
        )
        existing = self.store.find_job(job_id)
        if existing is not None and not replace:
            if job_to_mapping(existing.spec) == job_to_mapping(definition.spec):
                return existing, False
            raise Conflict(
                f"job {job_id!r} already exists with another definition; change it with "
                f"`clocktower jobs edit {job_id}` or PUT /api/v1/jobs/{job_id}"
            )
        return self.put_job(definition.spec, actor=actor, paused=definition.paused), True

    @_changes_store
    def put_job(self, spec: JobSpec, *, actor: str, paused: bool | None = None) -> Job:
        """Create or replace a job from a validated spec. Creating or editing a job
        never fires it: its next fire time is the first one after now (an `at`
        job whose instant just passed, within the misfire grace, still runs)."""
        now = self.clock()
        existing = self.store.find_job(spec.id)
        same_trigger = existing is not None and existing.spec.trigger == spec.trigger
        next_fire = self._first_fire(spec, now) if not same_trigger else None
        if existing is not None and existing.paused and paused is False:
            # Resumed by its definition: the fire times it missed while paused
            # are skipped, as `resume` skips them (unless `catch_up_paused`).
            resumed = dataclasses.replace(existing, spec=spec)  # its new catch_up_paused
            next_fire = self._first_fire_from(spec, resume_from(resumed, now))
            same_trigger = False
        job = self.store.put_job(
            spec,
            now=now,
            next_fire_at=next_fire,
            paused=paused,
            broken=self.broken_reason(spec),
            keep_next_fire=same_trigger,
        )
        action = "job.create" if existing is None else "job.update"
        self.store.add_event(at=now, actor=actor, action=action, job_id=spec.id)
        return job

    @_changes_store
    def update_job(self, job_id: str, changes: Mapping[str, Any], *, actor: str) -> Job:
        """Change some fields of a job; the result is validated as a whole."""
        job = self.store.get_job(job_id)
        merged = {**job_to_mapping(job.spec), **changes}
        merged.pop("version", None)
        merged.pop("id", None)
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
        definition = parse_job(
            merged,
            job_id=job_id,
            defaults=self.defaults,
            source=job.spec.source,
            default_tz=self.default_tz,
        )
        return self.put_job(definition.spec, actor=actor, paused=definition.paused)

    @_changes_store
    def delete_job(self, job_id: str, *, actor: str) -> list[int]:
        """Delete a job: no more fire times, waiting runs cancelled, running ones
        asked to stop; history kept until retention removes it."""
        now = self.clock()
        active = self.store.delete_job(job_id, now=now)
        for run_id in active:
            self.store.cancel(run_id, now=now, reason="job deleted")
        self.store.add_event(at=now, actor=actor, action="job.delete", job_id=job_id)
        return active

    @_changes_store
    def pause(self, job_id: str, *, actor: str) -> Job:
        now = self.clock()
        job = self.store.set_paused(job_id, True, now=now)
        self.store.add_event(at=now, actor=actor, action="job.pause", job_id=job_id)
        return job

    @_changes_store
    def resume(self, job_id: str, *, actor: str) -> Job:
        """Resume a paused job. Fire times that passed while it was paused are
        not caught up, unless the job sets `catch_up_paused`."""
        now = self.clock()
        job = self.store.get_job(job_id)
        next_fire = self._first_fire_from(job.spec, resume_from(job, now))
        job = self.store.set_paused(job_id, False, now=now, next_fire_at=next_fire)
        self.store.add_event(at=now, actor=actor, action="job.resume", job_id=job_id)
        return job

    def get_job(self, job_id: str) -> Job:
        return self.store.get_job(job_id)

    def list_jobs(self, **filters: Any) -> list[Job]:
        return self.store.list_jobs(**filters)

    # ================================================================ runs

    @_changes_store
    def trigger_now(
        self,
        job_id: str,
        *,
        actor: str,
        payload: Any = None,
        env: Mapping[str, str] | None = None,
    ) -> Run:
        """Run a job now, recorded as `trigger = manual`. Refused (Conflict) when
        the job's overlap policy would not let it start; `env` follows the
        rules of a job's `env` (InvalidSpec, field `env.NAME`)."""
        overrides = parse_env(dict(env or {}), "env")
        job = self.store.get_job(job_id)
        if job.broken:
            raise Conflict(f"job {job_id!r} is broken: {job.broken}")
        now = self.clock()
        probe = Run(0, job_id, now, TriggerKind.MANUAL, RunState.SCHEDULED)
        running = self.store.list_runs(job_id=job_id, states=[RunState.RUNNING], limit=1000)
        decision = decide_start(job, probe, running, self.store.queued_count(job_id))
        if decision.action == "skip":
            raise Conflict(f"job {job_id!r} cannot start now: {decision.reason}")
        new = NewRun(
            job_id=job_id,
            scheduled_for=now,
            trigger=TriggerKind.MANUAL,
            priority=job.spec.policies.priority,
            payload=payload,
            env=overrides,
        )
        (run,) = self.store.create_runs([new], now=now)
        self.store.add_event(
            at=now, actor=actor, action="run.trigger", job_id=job_id, run_id=run.id
        )
        return run

    @_changes_store
    def cancel(self, run_id: int, *, actor: str) -> Run:
        now = self.clock()
        run = self.store.cancel(run_id, now=now, reason=f"cancelled by {actor}")
        self.store.add_event(
            at=now, actor=actor, action="run.cancel", job_id=run.job_id, run_id=run_id
        )
        return run

    @_changes_store
    def backfill(self, job_id: str, start: datetime, end: datetime, *, actor: str) -> list[Run]:
        """One run for each fire time of the job in [start, end], oldest first,
        each knowing the fire time it serves; they run one after another."""
        if end < start:
            raise InvalidSpec("the end of a backfill comes before its start", field="to")
        job = self.store.get_job(job_id)
        if job.spec.trigger is None:
            raise InvalidSpec(f"job {job_id!r} has no schedule to backfill", field="job")
        trigger = self.trigger(job.spec)
        times = list(fire_times(trigger, start.timestamp() - 1e-6, end.timestamp()))
        if len(times) > MAX_BACKFILL:
            raise InvalidSpec(
                f"the range holds {len(times)} fire times; at most {MAX_BACKFILL} per backfill",
                field="to",
            )
        now = self.clock()
        new_runs = [
            NewRun(
                job_id=job_id,
                scheduled_for=to_datetime(t),
                due_at=now,
                trigger=TriggerKind.BACKFILL,
                priority=job.spec.policies.priority,
                queued=True,
            )
            for t in times
        ]
        runs = self.store.create_runs(new_runs, now=now)
        self.store.add_event(
            at=now,
            actor=actor,
            action="job.backfill",
            job_id=job_id,
            detail={"from": start.isoformat(), "to": end.isoformat(), "runs": len(runs)},
        )
        return runs

    def get_run(self, run_id: int) -> Run:
        return self.store.get_run(run_id)

    def list_runs(self, **filters: Any) -> list[Run]:
        return self.store.list_runs(**filters)

    def output(self, run_id: int, *, after: int = 0) -> tuple[list[OutputChunk], int]:
        self.store.get_run(run_id)
        return self.store.read_output(run_id, after=after)

    # ================================================================ schedules

    def trigger(self, spec: JobSpec) -> Trigger:
        if spec.trigger is None:
            raise InvalidSpec(f"job {spec.id!r} has no schedule", field="schedule", job=spec.id)
        return compile_trigger(spec.trigger, job_id=spec.id)

    def preview(self, job_id: str, *, count: int = 10) -> list[datetime]:
        job = self.store.get_job(job_id)
        if job.spec.trigger is None:
            return []
        trigger = self.trigger(job.spec)
        start = job.next_fire_at or self.clock()
        times = [start] if job.next_fire_at else []
        cursor = start.timestamp()
        while len(times) < count and (ts := trigger.next_after(cursor)) is not None:
            times.append(to_datetime(ts))
            cursor = ts
        return times[:count]

    def _first_fire(self, spec: JobSpec, now: datetime) -> datetime | None:
        if spec.trigger is None:
            return None
        after = now - MISFIRE_GRACE if spec.trigger.kind == "at" else now
        return first_fire_after(self.trigger(spec), after)

    def _first_fire_from(self, spec: JobSpec, start: datetime) -> datetime | None:
        return first_fire_after(self.trigger(spec), start) if spec.trigger is not None else None

    def broken_reason(self, spec: JobSpec) -> str | None:
        """Why a job cannot run as stored: its Python target does not import
        here (None when it does, or when this process does not check). A
        thread-mode target is imported and looked up, as its runs will; a
        process-mode one is imported afresh in a child for every run, so only
        its module is looked for."""
        if not self.checks_imports or not isinstance(spec.target, PythonTarget):
            return None
        call = spec.target.call
        if spec.target.isolation == "process":
            return missing_module(call)
        try:
            resolve(call)
        except TargetError as exc:
            message = str(exc)
            if message.startswith(CANNOT_IMPORT):
                return message
            return f"{CANNOT_IMPORT} {call!r}: {message}"
        return None

    # ================================================================ config

    @_changes_store
    def reconcile(
        self,
        specs: Mapping[str, JobSpec],
        paused: Collection[str] = (),
        enabled: Collection[str] = (),
        *,
        source: str,
        actor: str,
    ) -> ReconcileReport:
        """Apply the jobs of one config file: add new ones, change edited ones,
        disable (pause) the ones the file no longer has, keeping their history.

        A job the file declares `paused` (or `enabled = false`) is paused, one
        it declares `enabled` (or `paused = false`) is resumed, each time the
        file is applied; a job that says neither keeps its state, except that
        one paused because it had left the file is resumed when it comes back.
        Jobs created through the API or CLI are left alone: a file job with
        the id of one is refused, before anything is applied."""
        stored = {job_id: self.store.find_job(job_id) for job_id in specs}
        taken = [
            job_id
            for job_id, job in stored.items()
            if job is not None and not job.spec.source.startswith("file:")
        ]
        if taken:
            file = source.removeprefix("file:")
            raise ConfigError(
                [
                    InvalidSpec(
                        "a job with this id was created through the API or CLI; rename "
                        "one of them, or delete that job first (clocktower jobs rm)",
                        file=file,
                        job=job_id,
                    )
                    for job_id in taken
                ]
            )
        report = ReconcileReport()
        for job_id, spec in specs.items():
            state = True if job_id in paused else False if job_id in enabled else None
            self._reconcile_one(spec, stored[job_id], state, actor, report)
        for job in self.store.list_jobs(source_prefix="file:"):
            if job.spec.source == source and job.id not in specs and not job.paused:
                self.pause(job.id, actor=actor)
                report.disabled.append(job.id)
        return report

    def _reconcile_one(
        self,
        spec: JobSpec,
        existing: Job | None,
        paused: bool | None,
        actor: str,
        report: ReconcileReport,
    ) -> None:
        """One file job, as stored now (`existing`); `paused` is the state the
        file declares (None: none)."""
        broken = self.broken_reason(spec)
        if broken:
            report.broken[spec.id] = broken
        if existing is None:
            self.put_job(spec, actor=actor, paused=paused or None)
            report.added.append(spec.id)
            return
        came_back = (
            paused is None
            and existing.paused
            and existing.spec.source == spec.source
            and self._disabled_by_config(existing)
        )
        if job_to_mapping(existing.spec) != job_to_mapping(spec) or existing.broken != broken:
            self.put_job(spec, actor=actor)
            report.changed.append(spec.id)
        else:
            report.unchanged.append(spec.id)
        if paused and not existing.paused:
            self.pause(spec.id, actor=actor)
        elif (paused is False and existing.paused) or came_back:
            self.resume(spec.id, actor=actor)

    def _disabled_by_config(self, job: Job) -> bool:
        """Whether `job` was paused because it left its config file."""
        events = self.store.list_events(job_id=job.id, actions=("job.pause", "job.resume"), limit=1)
        return bool(events) and events[0].action == "job.pause" and events[0].actor == "config"
