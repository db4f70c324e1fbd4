"""A node's writes: the claim step, starting runs and recording outcomes.

Every change of state is conditional (`WHERE id = ? AND state = ? AND node =
?`), its row count checked, as everywhere in the store. A busy node does
these writes in batches: `write` records outcomes, starts the claimed runs
whose instant has come and claims-and-starts runs already due, all in one
transaction. `start` and `finish` are that same code for one run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased

from clocktower.model import Job, Run, RunState
from clocktower.store.db import Database
from clocktower.store.output import Line, Output
from clocktower.store.rows import Decision, NewRun, new_run_values, run_from_row
from clocktower.store.runs import ACTIVE, insert_values, state_column
from clocktower.store.schema import jobs, runs

log = logging.getLogger("clocktower.store")

WRITE_ATTEMPTS = 3  # a batch aborted by a deadlock is written again, this many times in all

Decide = Callable[[Job, Run, list[Run], int], Decision]


@dataclass(slots=True)
class Started:
    """The result of asking to start a run."""

    run: Run  # as it is now (running, skipped, or back to scheduled)
    started: bool
    replaced: list[int]  # runs asked to cancel because of overlap = "replace"
    job: Job | None = None  # the run's job, as the decision saw it


@dataclass(slots=True)
class RunResult:
    """What the store records when a run ends."""

    state: RunState
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    result: Any = None


@dataclass(slots=True)
class Finish:
    """An outcome to record, and the runs it leads to (a retry, dependent jobs' runs)."""

    run_id: int
    outcome: RunResult
    now: datetime  # when the run ended
    follow_ups: Sequence[NewRun] = ()
    succeeded_job: str | None = None  # the jobs waiting for this one may now be due
    began: datetime | None = None  # when its target began, if later than its start was written


# The runs of jobs waiting for a job whose run succeeded (`Finish.succeeded_job`),
# given the outcome, those jobs, and every job with a success in the same batch
# (not committed yet, so not to be found by a query); called inside the
# transaction that records them.
Dependents = Callable[[Finish, list[Job], frozenset[str]], list[NewRun]]


@dataclass(slots=True)
class Written:
    """What one `write` did."""

    finished: dict[int, bool] = field(default_factory=dict)  # False: not ours any more
    started: dict[int, Started | None] = field(default_factory=dict)
    claimed: list[Started] = field(default_factory=list)  # claimed and decided at once
    more: bool = False  # the claim took all it was allowed: more runs may be due


def start_order(run: Run) -> tuple[int, datetime, int]:
    """Who goes first: highest priority, then earliest due, then oldest."""
    return (-run.priority, run.due_at or run.scheduled_for, run.id)


class WriteQueries:
    db: Database
    get_run: Callable[[int], Run]
    _append_output: Callable[[Connection, int, Sequence[Line], int, tuple[int, int] | None], None]
    _set_progress: Callable[[Connection, int, float, float | None], None]
    _dependents_of: Callable[[Connection, Iterable[str]], dict[str, list[Job]]]
    _parsed_jobs: Callable[[Connection, Sequence[Mapping[Any, Any]]], list[Job]]

    # ------------------------------------------------------------------ claim step

    @property
    def _sql(self) -> _Statements:
        return _STATEMENTS[self.db.caps.skip_locked, self.db.caps.needs_plan_hints]

    def claim(
        self, *, node: str, horizon: datetime, limit: int, lease_until: datetime
    ) -> list[Run]:
        """Take up to `limit` runs due by `horizon` (pending, leased to `node`),
        highest priority first; `start` decides each one at its instant."""
        if limit <= 0:
            return []
        with self.db.write() as conn:
            claimable = conn.execute(self._sql.claimable, {"b_horizon": horizon, "b_limit": limit})
            ids = [row.id for row in claimable]
            if not ids:
                return []
            rows = conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids), self._sql.state == RunState.SCHEDULED)
                .values(state=RunState.PENDING, node=node, lease_until=lease_until)
                .returning(*runs.c)
            ).mappings()
            return sorted((run_from_row(row) for row in rows), key=start_order)

    def start(
        self,
        run_id: int,
        *,
        node: str,
        now: datetime,
        lease_until: datetime,
        decide: Decide,
    ) -> Started | None:
        """Move a claimed run to running, or skip/queue it, as `decide` says
        given the job, the run, the job's running runs and how many are queued.
        The job row is locked so two starts of one job are decided one at a time.
        Returns None when this node no longer owns the run."""
        written = self.write(
            node=node, now=now, lease_until=lease_until, decide=decide, starts=[run_id]
        )
        return written.started[run_id]

    def finish(
        self,
        run_id: int,
        *,
        node: str,
        outcome: RunResult,
        now: datetime,
        follow_ups: Sequence[NewRun] = (),
    ) -> Run | None:
        """Record how a run ended and insert its follow-ups (a retry, dependent
        jobs' runs) in one transaction. None when this node lost the run."""
        finishes = [Finish(run_id, outcome, now, follow_ups)]
        if not self.write(node=node, now=now, finishes=finishes).finished[run_id]:
            return None
        return self.get_run(run_id)

    # ------------------------------------------------------------------ batches

    def write(
        self,
        *,
        node: str,
        now: datetime,
        outputs: Sequence[Output] = (),
        finishes: Sequence[Finish] = (),
        starts: Sequence[int] = (),
        claim: int = 0,
        lease_until: datetime | None = None,
        decide: Decide | None = None,
        dependents: Dependents | None = None,
    ) -> Written:
        """A node's writes of one moment, in one transaction, in this order:

        1. store `outputs` (in the order given);
        2. record `finishes` (with their follow-ups, and what `dependents`
           adds for the jobs waiting on the ones that succeeded);
        3. start `starts`, runs this node claimed whose instant has come;
        4. claim and start up to `claim` more runs due by `now`.

        Outcomes go first, so a run that just ended here no longer counts as
        running when the overlap policy decides the next run of its job. Each
        start is decided as `start` decides it, in priority order, each
        decision seeing the ones made before it.

        Job rows are locked (PostgreSQL) so that two transactions decide one
        job's runs one after the other: the jobs waiting for a success and the
        jobs of the runs to start, together in one statement in id order, then
        the jobs of the runs to claim, skipping any another transaction holds
        (those runs stay due). Two nodes' batches therefore wait for each other
        on job rows instead of deadlocking. A deadlock on run rows remains
        possible (overlap = "replace" asking a run to stop while its node
        writes that run's outcome); PostgreSQL aborts one batch, and it is
        written again.
        """
        rules = None
        if starts or claim > 0:
            if lease_until is None or decide is None:
                raise ValueError("starting runs needs a lease and a decide policy")
            rules = _StartRules(node, now, lease_until, decide)
        attempt = 1
        while True:
            try:
                return self._write_once(
                    outputs, finishes, starts, claim, node, now, rules, dependents
                )
            except DBAPIError as exc:
                # A serialization failure, or a deadlock: on run rows (overlap =
                # "replace" stopping a run whose node is writing it), or with a
                # transaction outside the engine (a job edited as its runs start).
                if attempt == WRITE_ATTEMPTS or not self.db.is_transient(exc):
                    raise
                log.warning("a batch write was aborted (%s); writing it again", exc.orig)
                attempt += 1

    def _write_once(
        self,
        outputs: Sequence[Output],
        finishes: Sequence[Finish],
        starts: Sequence[int],
        claim: int,
        node: str,
        now: datetime,
        rules: _StartRules | None,
        dependents: Dependents | None,
    ) -> Written:
        written = Written()
        with self.db.write() as conn:
            for output in outputs:
                if output.lines:
                    self._append_output(conn, output.run_id, output.lines, output.cap, output.cut)
                if output.progress is not None:
                    self._set_progress(conn, output.run_id, *output.progress)
            recorded, written.finished = self._owned_finishes(conn, node, finishes)
            upstream = {f.succeeded_job for f in recorded if f.succeeded_job}
            waiting: dict[str, list[Job]] = {}
            if dependents is not None and upstream:
                waiting = self._dependents_of(conn, upstream)
            owned = self._owned_pending(conn, node, starts) if rules is not None and starts else []
            locked = {job.id for jobs_ in waiting.values() for job in jobs_}
            by_job = self._jobs_locked(conn, sorted(locked | {r.job_id for r in owned}))
            if recorded:
                self._record(conn, recorded, waiting, dependents)
            if rules is not None and starts:
                decided = self._decide(conn, owned, RunState.PENDING, rules, by_job)
                written.started = {run_id: decided.get(run_id) for run_id in starts}
            if rules is not None and claim > 0:
                claimable = {"b_horizon": now, "b_limit": claim}
                rows = conn.execute(self._sql.claimable, claimable).mappings()
                due = [run_from_row(row) for row in rows]
                free = self._jobs_locked(conn, sorted({r.job_id for r in due}), skip_locked=True)
                takes = [run for run in due if run.job_id in free]  # the rest stay due
                decided = self._decide(conn, takes, RunState.SCHEDULED, rules, free)
                written.claimed = [decided[run.id] for run in takes]
                # Runs passed over for a held job do not count: the writer
                # would claim them again at once, and again, until the job is free.
                written.more = len(takes) == claim
            changed = [*written.started.values(), *written.claimed]
            if written.finished or any(s and (not s.started or s.replaced) for s in changed):
                self.db.notify(conn)
        return written

    def _owned_pending(self, conn: Connection, node: str, run_ids: Iterable[int]) -> list[Run]:
        rows = conn.execute(self._sql.owned_pending, {"b_ids": list(run_ids), "b_node": node})
        return sorted((run_from_row(r) for r in rows.mappings()), key=start_order)

    def _decide(
        self,
        conn: Connection,
        candidates: list[Run],
        expected: RunState,
        rules: _StartRules,
        by_job: Mapping[str, Job],
    ) -> dict[int, Started]:
        """Decide and apply the start of each run (in the order given), whose
        jobs `by_job` holds locked; runs started earlier in the batch count as
        running."""
        if not candidates:
            return {}
        job_ids = sorted({run.job_id for run in candidates})
        running, queued = self._runs_of_jobs(conn, job_ids)
        plan = _StartPlan(rules)
        for run in candidates:
            job = by_job[run.job_id]
            others = [r for r in running.setdefault(run.job_id, []) if r.id != run.id]
            waiting = queued.setdefault(run.job_id, set())
            if run.cancel_requested:  # cancelled, or its job deleted, before its instant
                decision = Decision.cancel(run.error or "cancelled")
            else:
                decision = rules.decide(job, run, others, len(waiting - {run.id}))
            started = plan.add(run, job, decision, others)
            if started.started:
                running[run.job_id].append(started.run)
                waiting.discard(run.id)  # a queued run that starts waits no more
            elif decision.action == "queue":
                waiting.add(run.id)
        plan.apply(conn, self._sql, expected)
        return plan.results

    def _jobs_locked(
        self, conn: Connection, job_ids: list[str], *, skip_locked: bool = False
    ) -> dict[str, Job]:
        """The jobs, locked in id order (with `skip_locked`, those no other
        transaction holds); definitions come from the cache when they can."""
        if not job_ids:
            return {}
        query = self._sql.jobs_free if skip_locked else self._sql.jobs_locked
        rows = conn.execute(query, {"b_ids": job_ids}).mappings().all()
        return {job.id: job for job in self._parsed_jobs(conn, rows)}

    def _runs_of_jobs(
        self, conn: Connection, job_ids: list[str]
    ) -> tuple[dict[str, list[Run]], dict[str, set[int]]]:
        """The jobs' running runs, and the ids of their queued ones."""
        running: dict[str, list[Run]] = {}
        queued: dict[str, set[int]] = {}
        for row in conn.execute(self._sql.runs_of_jobs, {"b_ids": job_ids}).mappings():
            if row["state"] == RunState.RUNNING:
                running.setdefault(row["job_id"], []).append(run_from_row(row))
            else:
                queued.setdefault(row["job_id"], set()).add(row["id"])
        return running, queued

    def _owned_finishes(
        self, conn: Connection, node: str, finishes: Sequence[Finish]
    ) -> tuple[list[Finish], dict[int, bool]]:
        """The outcomes to record: of runs this node still owns (True), not of
        the others (False)."""
        if not finishes:
            return [], {}
        ids = [f.run_id for f in finishes]
        owned = set(conn.execute(self._sql.owned_active, {"b_ids": ids, "b_node": node}).scalars())
        done: dict[int, bool] = {}
        recorded: list[Finish] = []
        for finish in finishes:
            if finish.run_id not in owned:  # twice in one batch: the first wins
                done.setdefault(finish.run_id, False)
                continue
            owned.discard(finish.run_id)
            done[finish.run_id] = True
            recorded.append(finish)
        return recorded, done

    def _record(
        self,
        conn: Connection,
        recorded: list[Finish],
        waiting: dict[str, list[Job]],
        dependents: Dependents | None,
    ) -> None:
        """Record outcomes, and insert their follow-ups: retries, and the runs
        `dependents` decides for the `waiting` jobs (locked by the caller)."""
        succeeded = frozenset(f.succeeded_job for f in recorded if f.succeeded_job)
        params: list[dict[str, Any]] = []
        follow_ups: list[dict[str, Any]] = []
        given: set[str] = set()
        for finish in recorded:
            params.append(_outcome_params(finish))
            new_runs = list(finish.follow_ups)
            if dependents is not None and finish.succeeded_job in waiting:
                for new in dependents(finish, waiting[finish.succeeded_job], succeeded):
                    if new.job_id not in given:  # one run per waiting job and batch
                        given.add(new.job_id)
                        new_runs.append(new)
            follow_ups += [new_run_values(new, finish.now) for new in new_runs]
        if params:
            conn.execute(self._sql.record, params)
            insert_values(self.db, conn, follow_ups)


# --------------------------------------------------------------------------- batch helpers

_OUTCOME = ("state", "finished_at", "exit_code", "http_status", "error", "result", "lease_until")


def _ids() -> Any:
    return bindparam("b_ids", expanding=True)


class _Statements:
    """The statements of the claim, start and record steps, built once (with
    row locks for PostgreSQL, without for SQLite): building a statement costs
    more than running it."""

    def __init__(self, lock: bool, hints: bool) -> None:
        def locked(query: Select[Any], **kw: Any) -> Select[Any]:
            return query.with_for_update(**kw) if lock else query

        # Claims walk ix_runs_claim in claim order and stop at their limit. Left
        # alone, SQLite's planner takes the due_at range of ix_runs_state_due_at
        # instead and sorts every due run: a claim would cost as much as the
        # backlog is long. A unary plus keeps a column out of index choices.
        due_at: Any = runs.c.due_at
        if hints:
            due_at = literal_column("+runs.due_at", type_=runs.c.due_at.type)
        self.state: Any = state_column(hints)  # for statements that name their runs
        state = self.state

        other = aliased(runs)
        busy = exists().where(
            other.c.job_id == runs.c.job_id,
            other.c.state.in_(ACTIVE)
            | (
                (other.c.state == RunState.SCHEDULED)
                & other.c.queued.is_(True)
                & (other.c.id < runs.c.id)
            ),
        )
        # Runs due by `b_horizon` that a node may take, highest priority first.
        # A queued run (overlap = "queue", a backfill or catch-up series) is not
        # claimable while its job has an active run or an older queued run, so
        # a series runs one at a time, oldest first, and nodes do not bounce it.
        self.claimable = locked(
            select(runs)
            .where(
                runs.c.state == RunState.SCHEDULED,
                due_at <= bindparam("b_horizon", type_=runs.c.due_at.type),
                ~(runs.c.queued & busy),
            )
            .order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
            .limit(bindparam("b_limit")),
            skip_locked=True,
            of=runs,
        )
        mine = (runs.c.id.in_(_ids()), runs.c.node == bindparam("b_node"))
        self.owned_pending = locked(select(runs).where(*mine, state == RunState.PENDING))
        self.owned_active = locked(select(runs.c.id).where(*mine, state.in_(ACTIVE)))
        # In id order: two nodes locking the same jobs never deadlock.
        # Without the definitions (see `JobQueries._parsed_jobs`).
        bare = [column for column in jobs.c if column.name != "spec"]
        named_jobs = select(*bare).where(jobs.c.id.in_(_ids())).order_by(jobs.c.id)
        self.jobs_locked = locked(named_jobs)
        self.jobs_free = locked(named_jobs, skip_locked=True)
        self.runs_of_jobs = select(runs).where(
            runs.c.job_id.in_(_ids()),
            (runs.c.state == RunState.RUNNING)
            | ((runs.c.state == RunState.SCHEDULED) & runs.c.queued.is_(True)),
        )
        began = bindparam("b_began", type_=runs.c.started_at.type)
        self.record = (
            update(runs)
            .where(runs.c.id == bindparam("b_id"))
            .values({key: bindparam(f"b_{key}", type_=runs.c[key].type) for key in _OUTCOME})
            .values(started_at=func.coalesce(began, runs.c.started_at))
        )
        # The start decisions, conditional on the state the runs were read in
        # (and, for claimed runs, on this node still owning them).
        self.decided: dict[tuple[str, RunState], Any] = {}
        for expected in (RunState.PENDING, RunState.SCHEDULED):
            where = [state == expected]
            if expected is RunState.PENDING:
                where.append(runs.c.node == bindparam("b_owner"))
            now = bindparam("b_now", type_=runs.c.started_at.type)
            self.decided["start", expected] = (
                update(runs)
                .where(runs.c.id.in_(_ids()), *where)
                .values(
                    state=RunState.RUNNING,
                    started_at=now,
                    lease_until=bindparam("b_lease", type_=runs.c.lease_until.type),
                    node=bindparam("b_node"),
                )
            )
            self.decided["queue", expected] = (
                update(runs)
                .where(runs.c.id.in_(_ids()), *where)
                .values(state=RunState.SCHEDULED, queued=True, node=None, lease_until=None)
            )
            for action, ended in (("skip", RunState.SKIPPED), ("cancel", RunState.CANCELLED)):
                self.decided[action, expected] = (
                    update(runs)
                    .where(runs.c.id == bindparam("b_id"), *where)
                    .values(
                        state=ended,
                        error=bindparam("b_error", type_=runs.c.error.type),
                        finished_at=now,
                        lease_until=None,
                        node=bindparam("b_node"),
                    )
                )


_STATEMENTS = {
    (lock, hints): _Statements(lock, hints) for lock in (False, True) for hints in (False, True)
}


def _outcome_params(finish: Finish) -> dict[str, Any]:
    """The parameters of `_Statements.record` for one outcome."""
    outcome = finish.outcome
    return {
        "b_id": finish.run_id,
        "b_state": outcome.state,
        "b_finished_at": finish.now,
        "b_exit_code": outcome.exit_code,
        "b_http_status": outcome.http_status,
        "b_error": outcome.error,
        "b_result": outcome.result,
        "b_lease_until": None,
        "b_began": finish.began,
    }


@dataclass(frozen=True, slots=True)
class _StartRules:
    node: str
    now: datetime
    lease_until: datetime
    decide: Decide


class _StartPlan:
    """The start decisions of one batch, applied as one UPDATE per kind of decision."""

    def __init__(self, rules: _StartRules) -> None:
        self.now = rules.now
        self.lease_until = rules.lease_until
        self.node = rules.node
        self.results: dict[int, Started] = {}
        self.starts: list[int] = []
        self.queues: list[int] = []
        # Runs that end without starting, by action: skipped, or cancelled
        # (asked to stop before their instant), with why.
        self.ended: dict[str, list[tuple[int, str | None]]] = {"skip": [], "cancel": []}
        self.cancels: list[int] = []  # running runs asked to stop (replace)

    def add(self, run: Run, job: Job, decision: Decision, others: list[Run]) -> Started:
        """Decide one run; `run` (read in this transaction) becomes what it will be."""
        replaced: list[int] = []
        if decision.action in self.ended:
            self.ended[decision.action].append((run.id, decision.reason))
            ended = RunState.SKIPPED if decision.action == "skip" else RunState.CANCELLED
            run.state, run.error, run.finished_at = ended, decision.reason, self.now
            run.lease_until, run.node = None, self.node
        elif decision.action == "queue":
            self.queues.append(run.id)
            run.state, run.node, run.lease_until = RunState.SCHEDULED, None, None
        else:
            if decision.action == "replace":
                replaced = [r.id for r in others]
                self.cancels += replaced
            self.starts.append(run.id)
            run.state, run.started_at = RunState.RUNNING, self.now
            run.lease_until, run.node = self.lease_until, self.node
        started = Started(run, decision.action in ("start", "replace"), replaced, job)
        self.results[run.id] = started
        return started

    def apply(self, conn: Connection, sql: _Statements, expected: RunState) -> None:
        """Write the decisions: each UPDATE is conditional on the state the runs
        were read in (and on this node owning them), and its row count is
        checked; the rows are locked, so a difference is a bug, not a race."""
        common = {"b_owner": self.node, "b_node": self.node, "b_now": self.now}
        if self.starts:
            params = common | {"b_ids": self.starts, "b_lease": self.lease_until}
            result = conn.execute(sql.decided["start", expected], params)
            _check(result.rowcount, len(self.starts))
        if self.queues:
            params = {"b_ids": self.queues, "b_owner": self.node}
            result = conn.execute(sql.decided["queue", expected], params)
            _check(result.rowcount, len(self.queues))
        for action, ended in self.ended.items():
            if not ended:
                continue
            rows = [common | {"b_id": i, "b_error": e} for i, e in ended]
            result = conn.execute(sql.decided[action, expected], rows)
            if conn.dialect.supports_sane_multi_rowcount:
                _check(result.rowcount, len(ended))
        if self.cancels:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(self.cancels), sql.state.in_(ACTIVE))
                .values(cancel_requested=True, error="replaced by a newer run")
            )


def _check(changed: int, expected: int) -> None:
    if changed != expected:
        raise RuntimeError(f"{expected} locked run rows to update, {changed} updated")


__all__ = [
    "Decide",
    "Dependents",
    "Finish",
    "RunResult",
    "Started",
    "WriteQueries",
    "Written",
    "start_order",
]
