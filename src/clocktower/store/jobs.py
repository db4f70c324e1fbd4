"""Job rows: definitions, pause state, next fire time, and the fire step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text, update

from clocktower.model import Job, JobNotFound, JobSpec, Run, RunState
from clocktower.store import schema
from clocktower.store.db import Database
from clocktower.store.rows import FirePlan, job_from_row, joined
from clocktower.store.runs import insert_runs, insert_runs_counted
from clocktower.store.schema import jobs, runs

LIVE = jobs.c.deleted_at.is_(None)
HAS_AFTER = text(schema.HAS_AFTER)  # as written in the partial index, so that it is used
_WITH_AFTER = select(jobs).where(LIVE, HAS_AFTER)  # built once: building costs more than running
# A job row without its definition: parsing a definition costs more than
# reading it, and the store keeps the parsed ones (`SpecCache`).
BARE = [column for column in jobs.c if column.name != "spec"]


class JobQueries:
    db: Database

    def _job(self, row: Mapping[Any, Any]) -> Job:
        return job_from_row(row, self.db.specs)

    # ------------------------------------------------------------------ reads

    def get_job(self, job_id: str, *, include_deleted: bool = False) -> Job:
        with self.db.read() as conn:
            return self._get_job(conn, job_id, include_deleted=include_deleted)

    def _get_job(
        self, conn: Connection, job_id: str, *, include_deleted: bool = False, lock: bool = False
    ) -> Job:
        query = select(jobs).where(jobs.c.id == job_id)
        if not include_deleted:
            query = query.where(LIVE)
        if lock and self.db.caps.skip_locked:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise JobNotFound(job_id)
        return self._job(row)

    def find_job(self, job_id: str) -> Job | None:
        try:
            return self.get_job(job_id)
        except JobNotFound:
            return None

    def list_jobs(
        self,
        *,
        text: str | None = None,
        tag: str | None = None,
        kind: str | None = None,
        paused: bool | None = None,
        source_prefix: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Job]:
        query = select(jobs).where(LIVE).order_by(jobs.c.id).offset(offset)
        if text:
            query = query.where(jobs.c.id.contains(text, autoescape=True))
        if tag:
            query = query.where(jobs.c.tags.contains(f",{tag},", autoescape=True))
        if kind:
            query = query.where(jobs.c.kind == kind)
        if paused is not None:
            query = query.where(jobs.c.paused == paused)
        if source_prefix:
            query = query.where(jobs.c.source.startswith(source_prefix, autoescape=True))
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            return [self._job(r) for r in conn.execute(query).mappings()]

    def count_jobs(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(jobs).where(LIVE)).scalar_one()
            )

    def dependents(self, job_id: str) -> list[Job]:
        """Live jobs whose `after` lists `job_id`."""
        return self.dependents_of([job_id]).get(job_id, [])

    def dependents_of(self, job_ids: Iterable[str]) -> dict[str, list[Job]]:
        """For each of `job_ids` that some live job lists in its `after`, those jobs.

        One query over the jobs that have an `after` at all (a partial index
        keeps that cheap however many jobs the store holds).
        """
        with self.db.read() as conn:
            return self._dependents_of(conn, job_ids)

    def _dependents_of(self, conn: Connection, job_ids: Iterable[str]) -> dict[str, list[Job]]:
        wanted = set(job_ids)
        found: dict[str, list[Job]] = {}
        for row in conn.execute(_WITH_AFTER).mappings():
            upstream = wanted.intersection(row["after"].strip(",").split(","))
            if not upstream:
                continue
            job = self._job(row)
            for job_id in upstream:
                found.setdefault(job_id, []).append(job)
        return found

    # ------------------------------------------------------------------ writes

    def put_job(
        self,
        spec: JobSpec,
        *,
        now: datetime,
        next_fire_at: datetime | None,
        paused: bool | None = None,
        broken: str | None = None,
        keep_next_fire: bool = False,
    ) -> Job:
        """Create or replace a job's definition (reviving a deleted one).

        `keep_next_fire` leaves an existing job's next fire time alone, for a
        re-applied definition whose trigger did not change.
        """
        from clocktower.spec import job_to_mapping

        values: dict[str, Any] = {
            "spec": job_to_mapping(spec),
            "kind": spec.target.kind,
            "tags": joined(spec.tags),
            "after": joined(spec.after),
            "source": spec.source,
            "broken": broken,
            "priority": spec.policies.priority,
            "deleted_at": None,
            "updated_at": now,
        }
        with self.db.write() as conn:
            existing = conn.execute(select(jobs).where(jobs.c.id == spec.id)).mappings().first()
            if existing is None:
                values |= {
                    "id": spec.id,
                    "created_at": now,
                    "next_fire_at": next_fire_at,
                    "paused": bool(paused),
                    "paused_at": now if paused else None,
                }
                conn.execute(jobs.insert().values(**values))
            else:
                if not keep_next_fire or existing["deleted_at"] is not None:
                    values["next_fire_at"] = next_fire_at
                if paused is not None and paused != existing["paused"]:
                    values |= {"paused": paused, "paused_at": now if paused else None}
                values["version"] = existing["version"] + 1
                conn.execute(update(jobs).where(jobs.c.id == spec.id).values(**values))
            self.db.notify(conn)
            return self._get_job(conn, spec.id)

    def set_paused(
        self, job_id: str, paused: bool, *, now: datetime, next_fire_at: datetime | None = None
    ) -> Job:
        # Pausing a paused job keeps when it was paused (`catch_up_paused` counts from then).
        paused_at = func.coalesce(jobs.c.paused_at, now) if paused else None
        values: dict[str, Any] = {"paused": paused, "paused_at": paused_at}
        if not paused:
            values["next_fire_at"] = next_fire_at
        with self.db.write() as conn:
            result = conn.execute(
                update(jobs).where(jobs.c.id == job_id, LIVE).values(**values, updated_at=now)
            )
            if result.rowcount == 0:
                raise JobNotFound(job_id)
            self.db.notify(conn)
            return self._get_job(conn, job_id)

    def set_broken(self, job_id: str, reason: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(broken=reason))

    def set_next_fire(self, job_id: str, next_fire_at: datetime | None) -> None:
        with self.db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(next_fire_at=next_fire_at))
            self.db.notify(conn)

    def delete_job(self, job_id: str, *, now: datetime) -> list[int]:
        """Delete a job: it stops firing, its waiting runs are cancelled, its
        history stays until retention prunes it. Returns the ids of its active
        runs, which the caller should cancel."""
        with self.db.write() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, LIVE)
                .values(deleted_at=now, next_fire_at=None, updated_at=now)
            )
            if result.rowcount == 0:
                raise JobNotFound(job_id)
            conn.execute(  # not started (waiting, or claimed for their instant)
                update(runs)
                .where(
                    runs.c.job_id == job_id,
                    runs.c.state.in_([RunState.SCHEDULED, RunState.PENDING]),
                )
                .values(
                    state=RunState.CANCELLED,
                    finished_at=now,
                    error="job deleted",
                    node=None,
                    lease_until=None,
                )
            )
            active = conn.execute(
                select(runs.c.id).where(runs.c.job_id == job_id, runs.c.state == RunState.RUNNING)
            )
            ids = [row[0] for row in active]
            self.db.notify(conn)
            return ids

    # ------------------------------------------------------------------ fire step

    def fire_due(
        self,
        *,
        horizon: datetime,
        plan: Callable[[Job], FirePlan],
        now: datetime,
        limit: int = 200,
        want_runs: bool = True,
    ) -> tuple[list[Run], bool]:
        """One fire step: lock jobs due by `horizon`, insert the runs `plan`
        decides (a conflict on the (job, fire time) key inserts nothing), and
        advance each job's next fire time, all in one transaction.

        Returns the runs created (none when not `want_runs`) and whether more
        due jobs are waiting. `limit` keeps each transaction, which holds the
        write lock while `plan` runs, short.
        """
        due_by = (
            LIVE,
            jobs.c.next_fire_at <= horizon,
            jobs.c.paused.is_(False),
            jobs.c.broken.is_(None),
        )
        with self.db.read() as conn:  # the common case: nothing due, no write lock
            if conn.execute(select(jobs.c.id).where(*due_by).limit(1)).first() is None:
                return [], False
        query = select(*BARE).where(*due_by).order_by(jobs.c.next_fire_at).limit(limit)
        if self.db.caps.skip_locked:
            query = query.with_for_update(skip_locked=True)
        with self.db.write() as conn:
            due = self._parsed_jobs(conn, conn.execute(query).mappings().all())
            plans = [(job, plan(job)) for job in due]
            new_runs = [new for _, fp in plans for new in fp.runs]
            if want_runs:
                created = insert_runs(self.db, conn, new_runs, now)
                inserted = len(created)
            else:
                created, inserted = [], insert_runs_counted(self.db, conn, new_runs, now)
            if plans:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == bindparam("b_id"), jobs.c.version == bindparam("b_version"))
                    .values(next_fire_at=bindparam("b_next")),
                    [
                        {"b_id": job.id, "b_version": job.version, "b_next": fp.next_fire_at}
                        for job, fp in plans
                    ],
                )
            if inserted:
                self.db.notify(conn)
            return created, len(due) == limit

    def _parsed_jobs(self, conn: Connection, rows: Sequence[Mapping[Any, Any]]) -> list[Job]:
        """Jobs from rows read without their definitions (`BARE` columns): the
        definitions come from the cache, or are read for the jobs it lacks."""
        unparsed = [row["id"] for row in rows if not self.db.specs.has(row)]
        specs: dict[str, Any] = {}
        if unparsed:
            query = select(jobs.c.id, jobs.c.spec).where(jobs.c.id.in_(unparsed))
            specs = {job_id: spec for job_id, spec in conn.execute(query)}
        return [
            self._job({**row, "spec": specs[row["id"]]} if row["id"] in specs else row)
            for row in rows
        ]

    def next_fire_time(self) -> datetime | None:
        query = select(func.min(jobs.c.next_fire_at)).where(
            LIVE, jobs.c.paused.is_(False), jobs.c.broken.is_(None)
        )
        with self.db.read() as conn:
            value: datetime | None = conn.execute(query).scalar_one_or_none()
            return value

    def job_ids_matching(self, ids: Sequence[str]) -> set[str]:
        with self.db.read() as conn:
            rows = conn.execute(select(jobs.c.id).where(LIVE, jobs.c.id.in_(ids)))
            return {r[0] for r in rows}
