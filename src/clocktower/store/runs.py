"""Run rows: creating them, leases, cancellation, progress and queries.

Every change of state is a conditional UPDATE (`WHERE id = ? AND state = ?
AND node = ?`) whose row count says whether this node won. That is what makes
the protocol right on both databases; `SKIP LOCKED` only saves PostgreSQL
nodes from waiting on each other. The claim step and a node's batched writes
(claiming, starting, recording outcomes) are in `clocktower.store.writes`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, literal_column, select, update

from clocktower.model import FINAL_STATES, Job, Run, RunNotFound, RunState, TriggerKind
from clocktower.store.db import Database
from clocktower.store.rows import NewRun, new_run_values, run_from_row
from clocktower.store.schema import runs

ACTIVE = [RunState.PENDING, RunState.RUNNING]
FINAL = [str(s) for s in FINAL_STATES]


def state_column(hints: bool) -> Any:
    """`runs.state`, for statements that name their runs (`id IN (...)`): they
    must look them up by id, and SQLite's planner would rather walk every run
    in the state they also test, through an index that starts with `state`. A
    unary plus keeps the column out of its index choices (`hints`)."""
    if hints:
        return literal_column("+runs.state", type_=runs.c.state.type)
    return runs.c.state


def insert_runs(
    db: Database, conn: Connection, new_runs: Sequence[NewRun], now: datetime
) -> list[Run]:
    """Insert runs in one statement, oldest id first. A run whose (job, fire
    time, key) exists already is not created again, nor returned."""
    return insert_values(db, conn, [new_run_values(new, now) for new in new_runs])


def insert_runs_counted(
    db: Database, conn: Connection, new_runs: Sequence[NewRun], now: datetime
) -> int:
    """`insert_runs` for a caller that only needs how many were created."""
    if not new_runs:
        return 0
    stmt = db.insert(runs).on_conflict_do_nothing()
    result = conn.execute(stmt, [new_run_values(new, now) for new in new_runs])
    return int(result.rowcount)


def insert_values(db: Database, conn: Connection, values: list[dict[str, Any]]) -> list[Run]:
    if not values:
        return []
    stmt = db.insert(runs).on_conflict_do_nothing().returning(*runs.c)
    rows = conn.execute(stmt, values).mappings()
    return sorted((run_from_row(row) for row in rows), key=lambda run: run.id)


class RunQueries:
    db: Database
    _get_job: Callable[..., Job]

    # ------------------------------------------------------------------ create

    def create_runs(self, new_runs: Sequence[NewRun], *, now: datetime) -> list[Run]:
        """Insert runs (manual, retry, backfill, dependency). Runs with a fire key
        that already exists are not created twice."""
        with self.db.write() as conn:
            created = insert_runs(self.db, conn, new_runs, now)
            self.db.notify(conn)
            return created

    @property
    def _state(self) -> Any:
        return state_column(self.db.caps.needs_plan_hints)

    # ------------------------------------------------------------------ leases

    def renew(self, *, node: str, run_ids: Sequence[int], lease_until: datetime) -> set[int]:
        """Extend this node's leases; returns the ids it still owns."""
        if not run_ids:
            return set()
        with self.db.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(run_ids), runs.c.node == node, self._state.in_(ACTIVE))
                .values(lease_until=lease_until)
            )
            owned = conn.execute(
                select(runs.c.id).where(
                    runs.c.id.in_(run_ids), runs.c.node == node, self._state.in_(ACTIVE)
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
        decides (a retry), in the same transaction. A run someone asked to stop
        (cancelled, its job deleted, replaced) ends cancelled instead, with
        that reason, and is not retried: its node died before it could stop it."""
        query = select(runs).where(runs.c.state.in_(ACTIVE), runs.c.lease_until < now)
        with self.db.read() as conn:  # the common case: nothing expired, no write lock
            if conn.execute(query.with_only_columns(runs.c.id).limit(1)).first() is None:
                return []
        with self.db.write() as conn:
            lost = []
            for row in conn.execute(query).mappings().all():
                stopped = bool(row["cancel_requested"])
                ended = (
                    {"state": RunState.CANCELLED, "error": row["error"] or "cancelled"}
                    if stopped
                    else {
                        "state": RunState.LOST,
                        "error": f"node {row['node']} stopped renewing its lease",
                    }
                )
                result = conn.execute(
                    update(runs)
                    .where(runs.c.id == row["id"], runs.c.state == row["state"])
                    .values(finished_at=now, **ended)
                    .returning(*runs.c)
                )
                updated = result.mappings().first()
                if updated is None:
                    continue
                run = run_from_row(updated)
                lost.append(run)
                if not stopped:
                    job = self._get_job(conn, run.job_id, include_deleted=True)
                    insert_runs(self.db, conn, follow_up(job, run), now)
            if lost:
                self.db.notify(conn)
            return lost

    # ------------------------------------------------------------------ outcomes

    def set_progress(self, run_id: int, done: float, total: float | None) -> None:
        with self.db.write() as conn:
            self._set_progress(conn, run_id, done, total)

    def _set_progress(
        self, conn: Connection, run_id: int, done: float, total: float | None
    ) -> None:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.state == RunState.RUNNING)
            .values(progress_done=done, progress_total=total)
        )

    def release(self, run_ids: Sequence[int], *, node: str, started: bool = False) -> None:
        """Give back runs of this node whose target never began, scheduled
        again for any node: claimed ones (shutdown before their instant), or,
        with `started`, ones started ahead of a slot that did not free."""
        if not run_ids:
            return
        state = RunState.RUNNING if started else RunState.PENDING
        with self.db.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(run_ids), runs.c.node == node, self._state == state)
                .values(state=RunState.SCHEDULED, node=None, lease_until=None, started_at=None)
            )
            self.db.notify(conn)

    def cancel(self, run_id: int, *, now: datetime, reason: str = "cancelled") -> Run:
        """Cancel a run: one that has not started (waiting, or claimed by a
        node for its instant) at once; a running one is asked to stop, and its
        node records it cancelled once the target is stopped."""
        with self.db.write() as conn:
            run = self._get_run(conn, run_id)
            if run.state in (RunState.SCHEDULED, RunState.PENDING):
                # A claimed run's node finds it no longer pending at its instant.
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.state == run.state)
                    .values(
                        state=RunState.CANCELLED,
                        finished_at=now,
                        error=reason,
                        node=None,
                        lease_until=None,
                    )
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
            .where(runs.c.id.in_(run_ids), self._state.in_(ACTIVE))
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

    def next_due_run(self) -> datetime | None:
        """The earliest instant a waiting run may start or an active lease ends."""
        candidates = [t for t in self.next_due_and_lease() if t is not None]
        return min(candidates) if candidates else None

    def next_due_and_lease(self) -> tuple[datetime | None, datetime | None]:
        """The earliest instant a waiting run may start, and the earliest end
        of an active run's lease."""
        with self.db.read() as conn:
            due = conn.execute(
                select(func.min(runs.c.due_at)).where(
                    runs.c.state == RunState.SCHEDULED, runs.c.queued.is_(False)
                )
            ).scalar_one_or_none()
            lease = conn.execute(
                select(func.min(runs.c.lease_until)).where(runs.c.state.in_(ACTIVE))
            ).scalar_one_or_none()
        return due, lease

    def active_runs(self, *, node: str | None = None) -> list[Run]:
        query = select(runs).where(runs.c.state.in_(ACTIVE)).order_by(runs.c.id)
        if node is not None:
            query = query.where(runs.c.node == node)
        with self.db.read() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def queued_count(self, job_id: str) -> int:
        """How many runs of the job wait behind its running ones (overlap = "queue")."""
        query = select(func.count()).where(
            runs.c.job_id == job_id,
            runs.c.state == RunState.SCHEDULED,
            runs.c.queued.is_(True),
        )
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

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


__all__ = [
    "ACTIVE",
    "FINAL",
    "RunQueries",
    "insert_runs",
    "insert_runs_counted",
    "insert_values",
    "state_column",
]
