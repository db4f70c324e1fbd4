"""The engine: units of work over the store, and the runs this node executes.

The steps (`fire_due`, `claim`, `expire_leases`) are synchronous, read the time
from the injected clock and do one thing each; tests call them directly. The
async part starts claimed runs at their exact instant, executes them and
records the outcome. `clocktower.engine.loop` drives it all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clocktower.engine import policies
from clocktower.engine.sink import StoreSink
from clocktower.executors import get_executor
from clocktower.executors.base import FireContext, Outcome
from clocktower.model import InvalidSpec, Job, Run, RunState, TriggerKind
from clocktower.store import FirePlan, NewRun, RunResult, Store
from clocktower.triggers import compile_trigger
from clocktower.triggers.base import Trigger

log = logging.getLogger("clocktower.engine")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    node_id: str
    max_concurrent_runs: int = 8
    lease: float = 30.0  # seconds a claim or a running run is held without renewal
    lookahead: float = 2.0  # runs are created and claimed this far ahead of their instant
    shutdown_grace: float = 30.0
    artifacts_dir: Path = field(default_factory=lambda: Path("clocktower-artifacts"))
    max_artifact_bytes: int = 50 << 20


@dataclass(slots=True)
class Execution:
    run: Run
    task: asyncio.Task[None]
    cancel_reason: str | None = None
    started: bool = False


class Engine:
    def __init__(self, store: Store, settings: EngineSettings, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.node = settings.node_id
        self.executions: dict[int, Execution] = {}
        self.broken: dict[str, str] = {}
        self._triggers: dict[str, tuple[int, Trigger]] = {}
        self.accepting = True  # false while draining or when leases cannot be renewed
        self.on_change: Callable[[], None] = lambda: None  # wakes the loop

    # ================================================================ units of work

    def lease_until(self) -> datetime:
        return self.clock() + timedelta(seconds=self.settings.lease)

    def horizon(self) -> datetime:
        return self.clock() + timedelta(seconds=self.settings.lookahead)

    def trigger_for(self, job: Job) -> Trigger | None:
        if job.spec.trigger is None:
            return None
        cached = self._triggers.get(job.id)
        if cached is not None and cached[0] == job.version:
            return cached[1]
        trigger = compile_trigger(job.spec.trigger, job_id=job.id)
        self._triggers[job.id] = (job.version, trigger)
        return trigger

    def plan(self, job: Job) -> FirePlan:
        """The fire-step decision for one job; never touches the store (it runs
        inside the store's transaction)."""
        try:
            trigger = self.trigger_for(job)
        except InvalidSpec as exc:
            self.broken[job.id] = str(exc)
            return FirePlan([], None)
        if trigger is None:
            return FirePlan([], None)
        return policies.plan_fire(job, trigger, now=self.clock(), horizon=self.horizon())

    def fire_due(self) -> bool:
        """Create the runs of every job due within the lookahead. Returns True
        when more due jobs are waiting (call again)."""
        _, more = self.store.fire_due(horizon=self.horizon(), plan=self.plan, now=self.clock())
        for job_id, reason in self.broken.items():
            log.error("job %s is broken: %s", job_id, reason)
            self.store.set_broken(job_id, reason)
        self.broken.clear()
        return more

    def free_slots(self) -> int:
        return self.settings.max_concurrent_runs - len(self.executions)

    def claim(self) -> list[Run]:
        """Take runs due within the lookahead, as many as this node has slots."""
        if not self.accepting:
            return []
        return self.store.claim(
            node=self.node,
            horizon=self.horizon(),
            limit=self.free_slots(),
            lease_until=self.lease_until(),
        )

    def expire_leases(self) -> list[Run]:
        """Mark runs whose node stopped renewing as lost, and retry them per policy."""
        now = self.clock()
        return self.store.expire_leases(
            now=now, follow_up=lambda job, run: policies.retry_for(job, run, now)
        )

    def next_wakeup(self) -> datetime | None:
        """When the loop next has something to do, ignoring changes."""
        candidates = [self.store.next_fire_time(), self.store.next_due_run()]
        instants = [t for t in candidates if t is not None]
        if not instants:
            return None
        return min(instants) - timedelta(seconds=self.settings.lookahead)

    def renew_leases(self) -> None:
        """Extend the leases of this node's runs; stop the ones it no longer owns
        (another node declared them lost: fail closed, never run twice)."""
        ids = list(self.executions)
        owned = self.store.renew(node=self.node, run_ids=ids, lease_until=self.lease_until())
        for run_id in set(ids) - owned:
            self.cancel_local(run_id, "lease lost: another node took over this run")

    def apply_cancel_requests(self) -> None:
        for run_id in self.store.cancel_requested(node=self.node):
            self.cancel_local(run_id, "cancelled")

    # ================================================================ execution

    def start_claimed(self, runs: list[Run]) -> None:
        for run in runs:
            task = asyncio.create_task(self._execute(run), name=f"run-{run.id}")
            self.executions[run.id] = Execution(run, task)

    def cancel_local(self, run_id: int, reason: str) -> bool:
        execution = self.executions.get(run_id)
        if execution is None or execution.task.done():
            return False
        execution.cancel_reason = execution.cancel_reason or reason
        execution.task.cancel()
        return True

    async def _execute(self, run: Run) -> None:
        try:
            await self._wait_until(run.due_at or run.scheduled_for)
            await self._start_and_run(run)
        except asyncio.CancelledError:
            execution = self.executions.get(run.id)
            if execution is not None and not execution.started:
                await asyncio.to_thread(self.store.release, [run.id], node=self.node)
            else:
                raise
        except Exception:
            log.exception("run %s of job %s failed inside the engine", run.id, run.job_id)
            await self._record(run, Outcome(RunState.FAILED, error="internal error"), None)
        finally:
            self.executions.pop(run.id, None)
            self.on_change()

    async def _wait_until(self, instant: datetime) -> None:
        """Sleep until `instant` by the engine's clock; never return before it."""
        # A loop, not one sleep: timers may wake a hair early, and "never early" is a promise.
        while (remaining := (instant - self.clock()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)

    async def _start_and_run(self, run: Run) -> None:
        started = await asyncio.to_thread(
            self.store.start,
            run.id,
            node=self.node,
            now=self.clock(),
            lease_until=self.lease_until(),
            decide=policies.decide_start,
        )
        if started is None or not started.started:
            return
        for replaced in started.replaced:
            self.cancel_local(replaced, "replaced by a newer run")
        execution = self.executions[run.id]
        execution.started = True
        job = await asyncio.to_thread(self.store.get_job, run.job_id, include_deleted=True)
        log.info(
            "run %s of %s started (%s, attempt %s, for %s)",
            run.id,
            run.job_id,
            run.trigger,
            run.attempt,
            f"{run.scheduled_for:%Y-%m-%d %H:%M:%S}Z",
        )
        await self._run_target(job, started.run, execution)

    async def _run_target(self, job: Job, run: Run, execution: Execution) -> None:
        ctx = self._context(job, run)
        sink = StoreSink(self.store, run.id, cap=job.spec.policies.output_cap)
        pump = asyncio.create_task(sink.pump(), name=f"output-{run.id}")
        outcome: Outcome
        try:
            outcome = await get_executor(job.spec.target.kind).execute(
                job.spec.target,
                ctx,
                sink,
                timeout=job.spec.policies.timeout,
                kill_grace=job.spec.policies.kill_grace,
            )
        except asyncio.CancelledError:
            reason = execution.cancel_reason or "cancelled"
            state = RunState.FAILED if reason.startswith("interrupted") else RunState.CANCELLED
            outcome = Outcome(state, error=reason)
        finally:
            pump.cancel()
        await asyncio.shield(self._conclude(job, run, ctx, sink, outcome))

    async def _conclude(
        self, job: Job, run: Run, ctx: FireContext, sink: StoreSink, outcome: Outcome
    ) -> None:
        await sink.flush()
        await asyncio.to_thread(self._keep_artifacts, run.id, ctx.artifacts_dir)
        await self._record(run, outcome, job)

    def _context(self, job: Job, run: Run) -> FireContext:
        return FireContext(
            job_id=run.job_id,
            run_id=run.id,
            attempt=run.attempt,
            scheduled_for=run.scheduled_for,
            idempotency_key=run.idempotency_key,
            trigger=run.trigger,
            artifacts_dir=(self.settings.artifacts_dir / str(run.id)).resolve(),
            payload=run.payload,
            env={**job.spec.env, **run.env},
        )

    def _keep_artifacts(self, run_id: int, folder: Path) -> None:
        """Copy the files a run left in its artifacts folder into the store, so
        they outlive this node; then remove the folder."""
        if not folder.is_dir():
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = str(path.relative_to(folder))
            if path.stat().st_size > self.settings.max_artifact_bytes:
                log.warning("artifact %s of run %s is too large to keep", name, run_id)
                continue
            self.store.add_artifact(run_id, name, path.read_bytes(), now=self.clock())
        shutil.rmtree(folder, ignore_errors=True)

    async def _record(self, run: Run, outcome: Outcome, job: Job | None) -> None:
        now = self.clock()
        result = RunResult(
            outcome.state, outcome.exit_code, outcome.http_status, outcome.error, outcome.result
        )
        follow_ups: list[NewRun] = []
        if job is not None:
            ended = dataclasses.replace(run, state=outcome.state, finished_at=now)
            follow_ups = policies.retry_for(job, ended, now, permanent=outcome.permanent)
            if outcome.state is RunState.SUCCEEDED:
                follow_ups += await asyncio.to_thread(self._dependent_runs, run.job_id, now)
        recorded = await asyncio.to_thread(
            self.store.finish,
            run.id,
            node=self.node,
            outcome=result,
            now=now,
            follow_ups=follow_ups,
        )
        if recorded is None:
            log.warning("run %s was no longer owned by this node; outcome dropped", run.id)
            return
        took = f" in {recorded.duration:.2f}s" if recorded.duration is not None else ""
        detail = f": {outcome.error}" if outcome.error else ""
        level = logging.INFO if outcome.state is RunState.SUCCEEDED else logging.WARNING
        log.log(level, "run %s of %s %s%s%s", run.id, run.job_id, outcome.state, took, detail)
        for follow in follow_ups:
            log.info("  %s of %s due at %s", follow.trigger, follow.job_id, follow.due_at)

    def _dependent_runs(self, job_id: str, now: datetime) -> list[NewRun]:
        """Runs of the jobs whose `after` is now satisfied: each upstream job has
        succeeded since the dependent job's last dependency run."""
        created = []
        for dependent in self.store.dependents(job_id):
            if dependent.paused or dependent.broken:
                continue
            last = self.store.latest_run(dependent.id, TriggerKind.DEPENDENCY)
            since = (
                last.created_at if last and last.created_at else datetime.min.replace(tzinfo=UTC)
            )
            if all(self._succeeded_since(up, since, job_id) for up in dependent.spec.after):
                created.append(
                    NewRun(
                        job_id=dependent.id,
                        scheduled_for=now,
                        trigger=TriggerKind.DEPENDENCY,
                        priority=dependent.spec.policies.priority,
                    )
                )
        return created

    def _succeeded_since(self, upstream: str, since: datetime, finishing: str) -> bool:
        if upstream == finishing:
            return True
        success = self.store.last_success(upstream)
        return bool(success and success.finished_at and success.finished_at > since)
