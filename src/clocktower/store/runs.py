"""Run rows: the claim step, starting, leases, outcomes, cancellation, queries.

Every change of state is a conditional UPDATE (`WHERE id = ? AND state = ?
AND node = ?`) whose row count says whether this node won. That is what makes
the protocol right on both databases; `SKIP LOCKED` only saves PostgreSQL
nodes from waiting on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, select, update
from sqlalchemy.orm import aliased

from clocktower.model import FINAL_STATES, Job, Run, RunNotFound, RunState, TriggerKind
from clocktower.store.db import Database
from clocktower.store.rows import Decision, JobSummary, NewRun, new_run_values, run_from_row
from clocktower.store.schema import runs

ACTIVE = [RunState.PENDING, RunState.RUNNING]
FINAL = [str(s) for s in FINAL_STATES]


@dataclass(slots=True)
class Started:
    """The result of asking to start a run."""

    run: Run  # as it is now (running, skipped, or back to scheduled)
    started: bool
    replaced: list[int]  # runs asked to cancel because of overlap = "replace"


@dataclass(slots=True)
class RunResult:
    """What the store records when a run ends."""

    state: RunState
    exit_code: int | None = None
    http_status: int | None = None
    error: str | None = None
    result: Any = None


class RunQueries:
    db: Database
    _get_job: Callable[..., Job]

    # ------------------------------------------------------------------ create

    def create_runs(self, new_runs: Sequence[NewRun], *, now: datetime) -> list[Run]:
        """Insert runs (manual, retry, backfill, dependency). Runs with a fire key
        that already exists are not created twice."""
        with self.db.write() as conn:
            created = self._insert_runs(conn, new_runs, now)
            self.db.notify(conn)
            return created

    def _insert_runs(
        self, conn: Connection, new_runs: Iterable[NewRun], now: datetime
    ) -> list[Run]:
        stmt = self.db.insert(runs).on_conflict_do_nothing().returning(*runs.c)
        created = []
        for new in new_runs:
            row = conn.execute(stmt.values(**new_run_values(new, now))).mappings().first()
            if row is not None:
                created.append(run_from_row(row))
        return created

    # ------------------------------------------------------------------ claim step

    def claim(
        self, *, node: str, horizon: datetime, limit: int, lease_until: datetime
    ) -> list[Run]:
        """Take up to `limit` runs due by `horizon`, highest priority first.

        A queued run (overlap = "queue", a backfill or catch-up series) is not
        claimable while its job has an active run or an older queued run, so a
        series runs one at a time, oldest first, and nodes do not bounce it.
        """
        if limit <= 0:
            return []
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
        query = (
            select(runs.c.id)
            .where(
                runs.c.state == RunState.SCHEDULED,
                runs.c.due_at <= horizon,
                ~(runs.c.queued & busy),
            )
            .order_by(runs.c.priority.desc(), runs.c.due_at, runs.c.id)
            .limit(limit)
        )
        if self.db.caps.skip_locked:
            query = query.with_for_update(skip_locked=True, of=runs)
        with self.db.write() as conn:
            ids = [row[0] for row in conn.execute(query)]
            claimed = []
            for run_id in ids:
                row = (
                    conn.execute(
                        update(runs)
                        .where(runs.c.id == run_id, runs.c.state == RunState.SCHEDULED)
                        .values(state=RunState.PENDING, node=node, lease_until=lease_until)
                        .returning(*runs.c)
                    )
                    .mappings()
                    .first()
                )
                if row is not None:
                    claimed.append(run_from_row(row))
            return claimed

    def start(
        self,
        run_id: int,
        *,
        node: str,
        now: datetime,
        lease_until: datetime,
        decide: Callable[[Job, Run, list[Run], int], Decision],
    ) -> Started | None:
        """Move a claimed run to running, or skip/queue it, as `decide` says
        given the job, the run, the job's running runs and how many are queued.
        The job row is locked so two starts of one job are decided one at a time.
        Returns None when this node no longer owns the run."""
        with self.db.write() as conn:
            run = self._owned(conn, run_id, node, RunState.PENDING)
            if run is None:
                return None
            job = self._get_job(conn, run.job_id, include_deleted=True, lock=True)
            active = self._active_runs(conn, run.job_id, exclude=run_id)
            queued = self._queued_count(conn, run.job_id, exclude=run_id)
            decision = decide(job, run, active, queued)
            return self._apply_decision(conn, run, decision, active, now, lease_until)

    def _apply_decision(
        self,
        conn: Connection,
        run: Run,
        decision: Decision,
        active: list[Run],
        now: datetime,
        lease_until: datetime,
    ) -> Started:
        replaced: list[int] = []
        if decision.action == "skip":
            values: dict[str, Any] = {
                "state": RunState.SKIPPED,
                "error": decision.reason,
                "finished_at": now,
                "lease_until": None,
            }
        elif decision.action == "queue":
            values = {"state": RunState.SCHEDULED, "queued": True, "node": None}
            values["lease_until"] = None
        else:
            if decision.action == "replace":
                replaced = [r.id for r in active]
                self._request_cancel(conn, replaced, now, reason="replaced by a newer run")
            values = {"state": RunState.RUNNING, "started_at": now, "lease_until": lease_until}
        row = (
            conn.execute(
                update(runs).where(runs.c.id == run.id).values(**values).returning(*runs.c)
            )
            .mappings()
            .one()
        )
        if decision.action != "start" or replaced:
            self.db.notify(conn)
        return Started(run_from_row(row), decision.action in ("start", "replace"), replaced)

    def _owned(self, conn: Connection, run_id: int, node: str, state: RunState) -> Run | None:
        row = (
            conn.execute(
                select(runs).where(runs.c.id == run_id, runs.c.node == node, runs.c.state == state)
            )
            .mappings()
            .first()
        )
        return run_from_row(row) if row else None

    def _active_runs(self, conn: Connection, job_id: str, *, exclude: int) -> list[Run]:
        query = select(runs).where(
            runs.c.job_id == job_id, runs.c.state == RunState.RUNNING, runs.c.id != exclude
        )
        return [run_from_row(r) for r in conn.execute(query).mappings()]

    def _queued_count(self, conn: Connection, job_id: str, *, exclude: int) -> int:
        query = select(func.count()).where(
            runs.c.job_id == job_id,
            runs.c.state == RunState.SCHEDULED,
            runs.c.queued.is_(True),
            runs.c.id != exclude,
        )
        return int(conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ leases

    def renew(self, *, node: str, run_ids: Sequence[int], lease_until: datetime) -> set[int]:
        """Extend this node's leases; returns the ids it still owns."""
        if not run_ids:
            return set()
        with self.db.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(run_ids), runs.c.node == node, runs.c.state.in_(ACTIVE))
                .values(lease_until=lease_until)
            )
            owned = conn.execute(
                select(runs.c.id).where(
                    runs.c.id.in_(run_ids), runs.c.node == node, runs.c.state.in_(ACTIVE)
                )
            )
            return {row[0] for row in owned}

    def cancel_requested(self, *, node: str) -> list[int]:
        query = select(runs.c.id).where(
            runs.c.node == node, runs.c.state.in_(ACTIVE), runs.c.cancel_requested.is_(True)
        )
        with self.db.read() as conn:
            return [row[0] for row in conn.execute(query)]

    def expire_leases(
        self, *, now: datetime, follow_up: Callable[[Job, Run], list[NewRun]]
    ) -> list[Run]:
        """Mark runs whose lease passed as lost, and insert what `follow_up`
        decides (a retry), in the same transaction."""
        query = select(runs).where(runs.c.state.in_(ACTIVE), runs.c.lease_until < now)
        with self.db.write() as conn:
            lost = []
            for row in conn.execute(query).mappings().all():
                result = conn.execute(
                    update(runs)
                    .where(runs.c.id == row["id"], runs.c.state == row["state"])
                    .values(
                        state=RunState.LOST,
                        finished_at=now,
                        error=f"node {row['node']} stopped renewing its lease",
                    )
                    .returning(*runs.c)
                )
                updated = result.mappings().first()
                if updated is None:
                    continue
                run = run_from_row(updated)
                lost.append(run)
                job = self._get_job(conn, run.job_id, include_deleted=True)
                self._insert_runs(conn, follow_up(job, run), now)
            if lost:
                self.db.notify(conn)
            return lost

    # ------------------------------------------------------------------ outcomes

    def set_progress(self, run_id: int, done: float, total: float | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.state == RunState.RUNNING)
                .values(progress_done=done, progress_total=total)
            )

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
        values = {
            "state": outcome.state,
            "finished_at": now,
            "exit_code": outcome.exit_code,
            "http_status": outcome.http_status,
            "error": outcome.error,
            "result": outcome.result,
            "lease_until": None,
        }
        with self.db.write() as conn:
            row = (
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.node == node, runs.c.state.in_(ACTIVE))
                    .values(**values)
                    .returning(*runs.c)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            self._insert_runs(conn, follow_ups, now)
            self.db.notify(conn)
            return run_from_row(row)

    def release(self, run_ids: Sequence[int], *, node: str) -> None:
        """Give back claimed runs that never started (shutdown before their instant)."""
        if not run_ids:
            return
        with self.db.write() as conn:
            conn.execute(
                update(runs)
                .where(
                    runs.c.id.in_(run_ids), runs.c.node == node, runs.c.state == RunState.PENDING
                )
                .values(state=RunState.SCHEDULED, node=None, lease_until=None)
            )
            self.db.notify(conn)

    def cancel(self, run_id: int, *, now: datetime, reason: str = "cancelled") -> Run:
        """Cancel a run: a waiting one at once; a running one is asked to stop,
        and its node records it cancelled once the target is stopped."""
        with self.db.write() as conn:
            run = self._get_run(conn, run_id)
            if run.state in (RunState.SCHEDULED,):
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.state == run.state)
                    .values(state=RunState.CANCELLED, finished_at=now, error=reason)
                )
            elif run.state in ACTIVE:
                self._request_cancel(conn, [run_id], now, reason=reason)
            self.db.notify(conn)
            return self._get_run(conn, run_id)

    def _request_cancel(
        self, conn: Connection, run_ids: list[int], now: datetime, *, reason: str
    ) -> None:
        if not run_ids:
            return
        conn.execute(
            update(runs)
            .where(runs.c.id.in_(run_ids), runs.c.state.in_(ACTIVE))
            .values(cancel_requested=True, error=reason)
        )

    # ------------------------------------------------------------------ queries

    def get_run(self, run_id: int) -> Run:
        with self.db.read() as conn:
            return self._get_run(conn, run_id)

    def _get_run(self, conn: Connection, run_id: int) -> Run:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            raise RunNotFound(run_id)
        return run_from_row(row)

    def list_runs(
        self,
        *,
        job_id: str | None = None,
        states: Sequence[RunState] = (),
        trigger: TriggerKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        node: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        """Newest first; `before_id` is the cursor for the next page."""
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if job_id is not None:
            query = query.where(runs.c.job_id == job_id)
        if states:
            query = query.where(runs.c.state.in_([str(s) for s in states]))
        if trigger is not None:
            query = query.where(runs.c.trigger == trigger)
        if since is not None:
            query = query.where(runs.c.scheduled_for >= since)
        if until is not None:
            query = query.where(runs.c.scheduled_for <= until)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        if node is not None:
            query = query.where(runs.c.node == node)
        with self.db.read() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def summaries(self, job_ids: Sequence[str], *, recent: int = 20) -> dict[str, JobSummary]:
        """Each job's last finished run and its `recent` latest finished runs."""
        out = {job_id: JobSummary(job_id, None, []) for job_id in job_ids}
        if not job_ids:
            return out
        ranked = (
            select(
                runs,
                func.row_number()
                .over(partition_by=runs.c.job_id, order_by=runs.c.id.desc())
                .label("rank"),
            )
            .where(runs.c.job_id.in_(job_ids), runs.c.state.in_(FINAL))
            .subquery()
        )
        query = select(ranked).where(ranked.c.rank <= recent).order_by(ranked.c.id.desc())
        with self.db.read() as conn:
            for row in conn.execute(query).mappings():
                summary = out[row["job_id"]]
                run = run_from_row(row)
                summary.recent.append(run)
                if summary.last_run is None:
                    summary.last_run = run
        return out

    def next_due_run(self) -> datetime | None:
        """The earliest instant a waiting run may start or an active lease ends."""
        with self.db.read() as conn:
            due = conn.execute(
                select(func.min(runs.c.due_at)).where(
                    runs.c.state == RunState.SCHEDULED, runs.c.queued.is_(False)
                )
            ).scalar_one_or_none()
            lease = conn.execute(
                select(func.min(runs.c.lease_until)).where(runs.c.state.in_(ACTIVE))
            ).scalar_one_or_none()
        candidates = [t for t in (due, lease) if t is not None]
        return min(candidates) if candidates else None

    def active_runs(self, *, node: str | None = None) -> list[Run]:
        query = select(runs).where(runs.c.state.in_(ACTIVE)).order_by(runs.c.id)
        if node is not None:
            query = query.where(runs.c.node == node)
        with self.db.read() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def has_active(self, job_id: str) -> bool:
        query = select(func.count()).where(runs.c.job_id == job_id, runs.c.state.in_(ACTIVE))
        with self.db.read() as conn:
            return bool(conn.execute(query).scalar_one())

    def last_success(self, job_id: str) -> Run | None:
        query = (
            select(runs)
            .where(runs.c.job_id == job_id, runs.c.state == RunState.SUCCEEDED)
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
            return run_from_row(row) if row else None

    def latest_run(self, job_id: str, trigger: TriggerKind) -> Run | None:
        query = (
            select(runs)
            .where(runs.c.job_id == job_id, runs.c.trigger == trigger)
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
            return run_from_row(row) if row else None


__all__ = ["RunQueries", "RunResult", "Started"]
