"""The engine: units of work over the store, and the runs this node executes.

The steps (`fire_due`, `claim`, `expire_leases`) are synchronous, read the time
from the injected clock and do one thing each; tests call them directly. The
async part starts claimed runs at their exact instant, executes them and
records the outcome, through the writer (`clocktower.engine.writer`), which
groups the starts and outcomes of many runs into one transaction.
`clocktower.engine.loop` drives it all.

A run holds one of the node's `max_concurrent_runs` slots from its claim until
its target has ended; recording the outcome happens after the slot is free.

Read-ahead: a node working through short runs that are already due starts
more of them than it has free slots, in the transaction that records the ones
that ended, and keeps them in memory until a slot frees; when the outcome is
recorded, the run's `started_at` becomes the instant its target began. Without
it every slot would wait for a transaction between one short run and the next
(bench/firing.py (a): 10,000 runs due at once on 8 slots, all started after
4.5 s without, 3.2 s with). How many: `READ_AHEAD` for each run that ran to
its end in under `QUICK_RUN` since the previous claim, at most
`READ_AHEAD_LIMIT` times `max_concurrent_runs` waiting. A run that waits
longer than `READ_AHEAD_WAIT`, or whose node shuts down first, goes back to
the store (`Store.release`), for any node to take. Every place that gives
slots back hands them to waiting runs first (`_hand_over`). The slots still
bound how many targets execute at a time.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import os
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clocktower.engine import policies
from clocktower.engine.sink import StoreSink
from clocktower.engine.writer import Ending, Work, Writer
from clocktower.executors import get_executor
from clocktower.executors.base import FireContext, Outcome
from clocktower.model import InvalidSpec, Job, Run, RunState, TriggerKind
from clocktower.store import FirePlan, NewRun, RunResult, Store
from clocktower.store.writes import Finish, Started, start_order
from clocktower.triggers import compile_trigger
from clocktower.triggers.base import Trigger

log = logging.getLogger("clocktower.engine")

Clock = Callable[[], datetime]

TRIGGER_CACHE = 50_000  # compiled triggers kept, by job
QUICK_RUN = timedelta(milliseconds=100)  # runs this short are worth reading ahead for
READ_AHEAD = 4  # runs started ahead of a slot, for each one that ended quickly
READ_AHEAD_LIMIT = 8  # at most this many times max_concurrent_runs waiting for a slot
READ_AHEAD_WAIT = 1.0  # seconds a run read ahead waits for a slot before going back to the store


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


@dataclass(slots=True, eq=False)
class Execution:
    run: Run
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    started: Started | None = None  # the store's answer to starting it
    concluded: bool = False  # its outcome is handed to the writer
    holds_slot: bool = True
    # Read ahead: True once a slot is its own, False when it waited too long.
    slot: asyncio.Future[bool] | None = None
    queued: bool = False  # in the engine's list of runs waiting for a slot
    began: datetime | None = None  # when its target began (read-ahead runs only)

    @property
    def running(self) -> bool:
        """Started in the store and not yet concluded: it must end with an outcome."""
        return self.started is not None and self.started.started and not self.concluded

    @property
    def waiting(self) -> bool:
        """Read ahead, and its target has not begun."""
        return self.slot is not None and self.began is None


class Engine:
    def __init__(self, store: Store, settings: EngineSettings, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.node = settings.node_id
        self.executions: dict[int, Execution] = {}  # claimed here, until recorded
        self.broken: dict[str, str] = {}
        self._triggers: dict[str, tuple[int, Trigger]] = {}
        self._slots_held = 0
        self._waiting: list[Execution] = []  # read ahead, in start order (`start_order`)
        self._quick_endings = 0  # runs that ended in under QUICK_RUN since the last claim
        self._artifacts_root = settings.artifacts_dir.resolve()
        self.accepting = True  # false while draining or when leases cannot be renewed
        self.on_change: Callable[[], None] = lambda: None  # wakes the loop
        self._empty_folders: deque[Path] = deque()
        work = Work(
            node=self.node,
            clock=clock,
            lease_until=self.lease_until,
            decide=policies.decide_start,
            dependents=self._dependents,
            prepare=self._prepare,
            tidy=self._tidy,
        )
        self.writer = Writer(store, work)
        self.writer.reserve = self._reserve
        self.writer.ahead = self._ahead
        self.writer.on_claimed = self._start_written
        self.writer.on_idle = lambda: self.on_change()
        self.writer.executing = lambda: sum(1 for e in self.executions.values() if e.running)

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
        if len(self._triggers) >= TRIGGER_CACHE:
            self._triggers.clear()  # a million jobs must not mean a million triggers in memory
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
        _, more = self.store.fire_due(
            horizon=self.horizon(), plan=self.plan, now=self.clock(), want_runs=False
        )
        for job_id, reason in self.broken.items():
            log.error("job %s is broken: %s", job_id, reason)
            self.store.set_broken(job_id, reason)
        self.broken.clear()
        return more

    def free_slots(self) -> int:
        return self.settings.max_concurrent_runs - self._slots_held

    def claim(self, limit: int | None = None) -> list[Run]:
        """Take runs due within the lookahead, as many as this node has free
        slots (or `limit`)."""
        if not self.accepting:
            return []
        return self.store.claim(
            node=self.node,
            horizon=self.horizon(),
            limit=self.free_slots() if limit is None else limit,
            lease_until=self.lease_until(),
        )

    async def claim_and_start(self) -> list[Run]:
        """Claim for the free slots and execute what was claimed. The slots are
        held while the claim is written, so the writer cannot fill them too."""
        room = self._reserve()
        try:
            claimed = await asyncio.to_thread(self.claim, room) if room > 0 else []
        finally:
            self._slots_held -= room
            self._hand_over()
        self.start_claimed(claimed)
        return claimed

    def expire_leases(self) -> list[Run]:
        """Mark runs whose node stopped renewing as lost, and retry them per policy."""
        now = self.clock()
        return self.store.expire_leases(
            now=now, follow_up=lambda job, run: policies.retry_for(job, run, now)
        )

    def next_wakeup(self) -> datetime | None:
        """When the loop next has something to do, ignoring changes. Runs
        waiting for a slot are not a reason to wake: a slot that frees up is."""
        due, lease_end = self.store.next_due_and_lease()
        candidates = [self.store.next_fire_time(), lease_end]
        if self.accepting and self.free_slots() > 0:
            candidates.append(due)
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
        """Execute claimed runs, each at its instant; each holds a slot."""
        for run in runs:
            self._slots_held += 1
            self._spawn(Execution(run))

    def _spawn(self, execution: Execution) -> None:
        run = execution.run
        self.executions[run.id] = execution
        execution.task = asyncio.create_task(self._execute(execution), name=f"run-{run.id}")

    def _reserve(self) -> int:
        """Slots the writer may fill with runs already due (held until it says)."""
        room = self.free_slots() if self.accepting else 0
        self._slots_held += max(room, 0)
        return max(room, 0)

    def _ahead(self) -> int:
        """Runs the writer may start beyond the reserved slots (see read-ahead)."""
        quick, self._quick_endings = self._quick_endings, 0
        if not self.accepting:
            return 0
        limit = READ_AHEAD_LIMIT * self.settings.max_concurrent_runs - len(self._waiting)
        return max(0, min(READ_AHEAD * quick, limit))

    def _start_written(self, claimed: list[Started], reserved: int) -> None:
        """Runs the writer claimed and started at once: the first take the
        reserved slots (unused ones go back), the rest wait for one."""
        for started in claimed:
            _log_not_started(started)
        runs = [s for s in claimed if s.started]
        self._slots_held -= reserved - min(len(runs), reserved)
        loop = asyncio.get_running_loop()
        for index, started in enumerate(runs):
            execution = Execution(started.run, started=started)
            if index < reserved:
                pass  # a reserved slot
            elif not self._waiting and self.free_slots() > 0:
                self._slots_held += 1  # freed while the claim was written
            else:  # read ahead: waits for a slot
                execution.holds_slot = False
                execution.slot = loop.create_future()
                execution.queued = True
                # A later claim may hold a run of higher priority: it goes first.
                bisect.insort(self._waiting, execution, key=lambda e: start_order(e.run))
            self._spawn(execution)
        self._hand_over()  # unused reserved slots go to runs already waiting

    def _hand_over(self) -> None:
        """Give free slots to runs read ahead, in start order. Called wherever
        slots are given back, so that none stays free while a run waits."""
        while self._waiting and self.free_slots() > 0:
            waiting = self._waiting.pop(0)
            waiting.queued = False
            if waiting.slot is not None and not waiting.slot.done():
                self._slots_held += 1
                waiting.holds_slot = True
                waiting.slot.set_result(True)

    def _release_slot(self, execution: Execution) -> None:
        if not execution.holds_slot:
            return
        execution.holds_slot = False
        self._slots_held -= 1
        self.writer.refill = True  # more runs may be due for the freed slot
        self._hand_over()
        self.writer.kick()

    def _forget_waiting(self, execution: Execution) -> None:
        if execution.slot is not None and not execution.slot.done():
            execution.slot.cancel()  # it never takes a slot
        if execution.queued:
            execution.queued = False
            self._waiting.remove(execution)

    def cancel_local(self, run_id: int, reason: str) -> bool:
        """Stop a run this node executes; safe from any thread (the store's
        answers that lead here are read in worker threads)."""
        execution = self.executions.get(run_id)
        if execution is None or execution.task is None or execution.task.done():
            return False
        loop = execution.task.get_loop()
        if _running_loop() is not loop:
            loop.call_soon_threadsafe(self.cancel_local, run_id, reason)
            return True
        execution.cancel_reason = execution.cancel_reason or reason
        execution.task.cancel()
        return True

    async def _execute(self, execution: Execution) -> None:
        run = execution.run
        try:
            if execution.started is None:
                await self._wait_until(run.due_at or run.scheduled_for)
                execution.started = await self._request_start(execution)
                if execution.started is not None:
                    _log_not_started(execution.started)
            if execution.slot is not None and execution.running:
                if not await self._take_slot(execution):
                    return
                execution.began = self.clock()
            if execution.running:
                await self._run_started(execution)
        except asyncio.CancelledError:
            reason = execution.cancel_reason or ""
            if execution.waiting and execution.running and reason.startswith("interrupted"):
                # Read ahead, its target never began: another node may run it.
                self._forget_waiting(execution)
                await self._give_back(run)
                raise
            if execution.running:  # started, never ran to an outcome: it stops here
                started = execution.started
                job = started.job if started is not None else None
                await self._record(run, self._stopped(execution), job, execution=execution)
                raise
            if execution.started is None:  # never started: give it back
                await asyncio.to_thread(self.store.release, [run.id], node=self.node)
        except Exception:
            log.exception("run %s of job %s failed inside the engine", run.id, run.job_id)
            failed = Outcome(RunState.FAILED, error="internal error")
            await self._record(run, failed, None, execution=execution)
        finally:
            self._forget_waiting(execution)
            self._release_slot(execution)
            self.executions.pop(run.id, None)

    async def _give_back(self, run: Run) -> None:
        """A run read ahead whose target never began goes back to the store."""
        await asyncio.to_thread(self.store.release, [run.id], node=self.node, started=True)

    async def _take_slot(self, execution: Execution) -> bool:
        """Wait for a slot for a run read ahead. If none frees within
        `READ_AHEAD_WAIT` (the runs ahead of it turned out long), give the run
        back to the store, where any node with a free slot takes it."""
        slot = execution.slot
        assert slot is not None
        if not slot.done():  # usually it is: handed over before this task ran
            # A timer, not asyncio.wait_for: most runs read ahead never wait long,
            # and wait_for costs more than a short run.
            timer = asyncio.get_running_loop().call_later(READ_AHEAD_WAIT, _too_long, slot)
            try:
                await slot
            finally:
                timer.cancel()
        if slot.result():
            return True
        self._forget_waiting(execution)
        run = execution.run
        await self._give_back(run)
        execution.concluded = True  # nothing left to record here
        log.info("run %s of %s given back: no slot freed for it", run.id, run.job_id)
        return False

    async def _wait_until(self, instant: datetime) -> None:
        """Sleep until `instant` by the engine's clock; never return before it."""
        # A loop, not one sleep: timers may wake a hair early, and "never early" is a promise.
        while (remaining := (instant - self.clock()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining)

    async def _request_start(self, execution: Execution) -> Started | None:
        """Ask the writer to start a claimed run whose instant has come."""
        run = execution.run
        pending = self.writer.start(run.id)
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            if not self.writer.withdraw(run.id):
                # Being written: learn whether it started (then it must stop).
                execution.started = await pending
            raise

    async def _run_started(self, execution: Execution) -> None:
        started = execution.started
        if started is None:
            return
        run = started.run
        for replaced in started.replaced:
            self.cancel_local(replaced, "replaced by a newer run")
        job = started.job
        if job is None:
            job = await asyncio.to_thread(self.store.get_job, run.job_id, include_deleted=True)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "run %s of %s started (%s, attempt %s, for %s)",
                run.id,
                run.job_id,
                run.trigger,
                run.attempt,
                f"{run.scheduled_for:%Y-%m-%d %H:%M:%S}Z",
            )
        await self._run_target(job, run, execution)

    def _stopped(self, execution: Execution) -> Outcome:
        """How a run stopped by a cancellation ends: interrupted by a shutdown
        (failed, so the retry policy applies) or cancelled."""
        reason = execution.cancel_reason or "cancelled"
        state = RunState.FAILED if reason.startswith("interrupted") else RunState.CANCELLED
        return Outcome(state, error=reason)

    async def _run_target(self, job: Job, run: Run, execution: Execution) -> None:
        ctx = self._context(job, run)
        cap = job.spec.policies.output_cap
        sink = StoreSink(run.id, cap=cap, send=self.writer.output)
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
            outcome = self._stopped(execution)
        finally:
            sink.close()
        last = sink.take()
        if last is not None:
            self.writer.output(last)  # written before the outcome, in order
        await self._record(run, outcome, job, artifacts=ctx.artifacts_dir, execution=execution)

    def _context(self, job: Job, run: Run) -> FireContext:
        return FireContext(
            job_id=run.job_id,
            run_id=run.id,
            attempt=run.attempt,
            scheduled_for=run.scheduled_for,
            idempotency_key=run.idempotency_key,
            trigger=run.trigger,
            artifacts_dir=self._artifacts_root / str(run.id),
            payload=run.payload,
            env={**job.spec.env, **run.env},
        )

    def _keep_artifacts(self, run_id: int, folder: Path) -> None:
        """Copy the files a run left in its artifacts folder into the store, so
        they outlive this node; then remove the folder (an empty one later,
        after the outcome is written: removing a folder costs more than a run)."""
        try:
            with os.scandir(folder) as entries:
                if next(entries, None) is None:  # the usual case: the run left nothing
                    self._empty_folders.append(folder)
                    return
        except (FileNotFoundError, NotADirectoryError):
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = str(path.relative_to(folder))
            if path.stat().st_size > self.settings.max_artifact_bytes:
                log.warning("artifact %s of run %s is too large to keep", name, run_id)
                continue
            self.store.add_artifact(run_id, name, path.read_bytes(), now=self.clock())
        shutil.rmtree(folder, ignore_errors=True)

    def _tidy(self) -> None:
        """Remove the empty artifacts folders of recorded runs (in a worker thread)."""
        while self._empty_folders:
            with contextlib.suppress(OSError):
                os.rmdir(self._empty_folders.popleft())

    async def _record(
        self,
        run: Run,
        outcome: Outcome,
        job: Job | None,
        *,
        artifacts: Path | None = None,
        execution: Execution | None = None,
    ) -> None:
        """Hand the outcome to the writer, free the run's slot, and wait until
        the outcome is committed (even if this task is cancelled meanwhile)."""
        now = self.clock()
        result = RunResult(
            outcome.state, outcome.exit_code, outcome.http_status, outcome.error, outcome.result
        )
        follow_ups: list[NewRun] = []
        if job is not None and outcome.state.retryable:
            ended = dataclasses.replace(run, state=outcome.state, finished_at=now)
            follow_ups = policies.retry_for(job, ended, now, permanent=outcome.permanent)
        succeeded = job.id if job is not None and outcome.state is RunState.SUCCEEDED else None
        began = execution.began if execution is not None else None
        ending = Ending(Finish(run.id, result, now, follow_ups, succeeded, began), artifacts)
        if execution is not None:
            execution.concluded = True  # no longer executing, as the writer counts
            start = began or run.started_at
            ran = execution.cancel_reason is None and outcome.state in _RAN
            if ran and start is not None and now - start < QUICK_RUN:
                self._quick_endings += 1
        written = self.writer.finish(ending)
        if execution is not None:
            self._release_slot(execution)  # the writer may refill it in the same transaction
        if not await asyncio.shield(written):
            log.warning("run %s was no longer owned by this node; outcome dropped", run.id)
            return
        start = began or run.started_at
        took = f" in {(now - start).total_seconds():.2f}s" if start else ""
        detail = f": {outcome.error}" if outcome.error else ""
        level = logging.INFO if outcome.state is RunState.SUCCEEDED else logging.WARNING
        log.log(level, "run %s of %s %s%s%s", run.id, run.job_id, outcome.state, took, detail)
        for follow in ending.finish.follow_ups:
            log.info("  %s of %s due at %s", follow.trigger, follow.job_id, follow.due_at)

    def _prepare(self, endings: list[Ending]) -> None:
        """Before outcomes are recorded (in the writer's thread): keep each run's
        artifacts. Most runs make no folder: one listing of the artifacts root
        finds the few that did, instead of a failing lookup per run."""
        try:
            made = set(os.listdir(self._artifacts_root))
        except OSError:
            made = set()
        for ending in endings:
            folder = ending.artifacts
            if folder is None:
                continue
            if folder.parent != self._artifacts_root or folder.name in made:
                self._keep_artifacts(ending.finish.run_id, folder)

    def _dependents(
        self, finish: Finish, waiting: list[Job], succeeded: frozenset[str]
    ) -> list[NewRun]:
        """The runs of `waiting` jobs due now that `finish.succeeded_job` succeeded
        (called by the store, in the transaction recording the outcome, with
        the jobs that `succeeded` in that same transaction)."""
        if finish.succeeded_job is None:
            return []
        runs = self._dependent_runs(finish.now, waiting, succeeded)
        for new in runs:
            log.info("  %s of %s due at %s", new.trigger, new.job_id, new.scheduled_for)
        return runs

    def _dependent_runs(
        self, now: datetime, dependents: list[Job], succeeded: frozenset[str]
    ) -> list[NewRun]:
        """Runs of the jobs whose `after` is now satisfied: each upstream job has
        succeeded since the dependent job's last dependency run (or just now)."""
        created = []
        for dependent in dependents:
            if dependent.paused or dependent.broken:
                continue
            last = self.store.latest_run(dependent.id, TriggerKind.DEPENDENCY)
            since = (
                last.created_at if last and last.created_at else datetime.min.replace(tzinfo=UTC)
            )
            if all(self._succeeded_since(up, since, succeeded) for up in dependent.spec.after):
                created.append(
                    NewRun(
                        job_id=dependent.id,
                        scheduled_for=now,
                        trigger=TriggerKind.DEPENDENCY,
                        priority=dependent.spec.policies.priority,
                    )
                )
        return created

    def _succeeded_since(self, upstream: str, since: datetime, succeeded: frozenset[str]) -> bool:
        if upstream in succeeded:  # succeeded in the transaction being written
            return True
        success = self.store.last_success(upstream)
        return bool(success and success.finished_at and success.finished_at > since)


_RAN = (RunState.SUCCEEDED, RunState.FAILED)  # outcomes of a target that ran to its end


def _too_long(slot: asyncio.Future[bool]) -> None:
    if not slot.done():
        slot.set_result(False)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _log_not_started(started: Started) -> None:
    """Say why a run whose instant came did not start (skipped or queued)."""
    run = started.run
    if started.started:
        return
    if run.state is RunState.SKIPPED:
        log.warning("run %s of %s skipped: %s", run.id, run.job_id, run.error)
    elif run.state is RunState.CANCELLED:
        log.info("run %s of %s cancelled before it started: %s", run.id, run.job_id, run.error)
    elif run.state is RunState.SCHEDULED:
        log.info("run %s of %s queued behind the job's running run", run.id, run.job_id)
