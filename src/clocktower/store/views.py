"""Reads for the REST API, the dashboard and the metrics endpoint.

These return lean rows (the stored definition as it is, a run's outcome
without its payload) rather than parsed model objects, because a listing of
fifty jobs or the sparklines of a page must cost a few queries and no parsing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    Select,
    and_,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
    union_all,
)

from clocktower.model import ACTIVE_STATES, FINAL_STATES, Job, Run, RunState
from clocktower.store.db import Database
from clocktower.store.rows import job_from_row, run_from_row
from clocktower.store.schema import jobs, run_stamps, runs, tokens

JobState = Literal["active", "paused", "broken"]
JobSort = Literal["id", "next"]

LIVE = jobs.c.deleted_at.is_(None)
FINAL = [str(s) for s in FINAL_STATES]
ACTIVE = [str(s) for s in ACTIVE_STATES]


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job as listed: its stored definition (`job_to_mapping`'s shape) and state."""

    id: str
    spec: dict[str, Any]
    kind: str
    paused: bool
    broken: str | None
    next_fire_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    paused_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished run, as a sparkline or a success rate needs it."""

    id: int
    job_id: str
    state: RunState
    finished_at: datetime | None
    duration: float | None  # seconds from start to end, to the ms; None if it never started


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """A run that ended, as the metrics count it."""

    id: int
    job_id: str
    state: RunState
    started_at: datetime | None
    finished_at: datetime | None
    due_at: datetime
    trigger: str
    missed_count: int | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


_FINISHED_COLUMNS = (
    runs.c.id,
    runs.c.job_id,
    runs.c.state,
    runs.c.started_at,
    runs.c.finished_at,
    runs.c.due_at,
    runs.c.trigger,
    runs.c.missed_count,
)


def _finished(row: Any) -> FinishedRun:
    return FinishedRun(
        id=row.id,
        job_id=row.job_id,
        state=RunState(row.state),
        started_at=row.started_at,
        finished_at=row.finished_at,
        due_at=row.due_at,
        trigger=row.trigger,
        missed_count=row.missed_count,
    )


def _seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """end - start in seconds, computed by the database (no instants to parse)."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


_STATES = {str(state): state for state in RunState}


@functools.lru_cache(maxsize=64)
def _latest_outcomes(dialect: str, count: int, per_job: int) -> CompoundSelect[Any]:
    """One statement reading the latest finished runs of `count` jobs (bound
    as j0, j1, ...): built once per shape, so its compiled form is reused."""
    took = _seconds_between(dialect, runs.c.started_at, runs.c.finished_at).label("took")
    columns = (runs.c.id, runs.c.job_id, runs.c.state, runs.c.finished_at, took)
    latest = [
        select(*columns)
        .where(runs.c.job_id == bindparam(f"j{i}"), runs.c.state.in_(FINAL))
        .order_by(runs.c.id.desc())
        .limit(per_job)
        .subquery()
        for i in range(count)
    ]
    return union_all(*(select(part) for part in latest))


def _job_row(row: Any) -> JobRow:
    return JobRow(
        id=row.id,
        spec=row.spec,
        kind=row.kind,
        paused=bool(row.paused),
        broken=row.broken,
        next_fire_at=row.next_fire_at,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        paused_at=row.paused_at,
    )


def _job_filters(
    text: str | None, tag: str | None, kind: str | None, state: JobState | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [LIVE]
    if text:
        where.append(
            or_(
                jobs.c.id.contains(text, autoescape=True),
                jobs.c.tags.contains(text, autoescape=True),
            )
        )
    if tag:
        where.append(jobs.c.tags.contains(f",{tag},", autoescape=True))
    if kind:
        where.append(jobs.c.kind == kind)
    if state == "paused":
        where.append(jobs.c.paused.is_(True))
    elif state == "broken":
        where.append(jobs.c.broken.is_not(None))
    elif state == "active":
        where += [jobs.c.paused.is_(False), jobs.c.broken.is_(None)]
    return where


class ViewQueries:
    db: Database

    # ------------------------------------------------------------------ changes

    def change_stamp(self) -> int | None:
        """A number that moves whenever something the caches show is committed
        to the store, or None where that cannot be told cheaply (PostgreSQL).
        See `Database.change_stamp`."""
        return self.db.change_stamp()

    def runs_stamps(self, job_ids: Sequence[str]) -> dict[str, int]:
        """For each job, a number that moves whenever one of its runs is
        created, changed (a lease renewal aside) or deleted, by any process;
        kept on SQLite only (see `schema.run_stamps`), so it means something
        only where `change_stamp` is not None."""
        query = select(run_stamps.c.job_id, run_stamps.c.stamp).where(
            run_stamps.c.job_id.in_(sorted(set(job_ids)))
        )
        with self.db.read() as conn:
            found = {job_id: int(stamp) for job_id, stamp in conn.execute(query)}
        return {job_id: found.get(job_id, 0) for job_id in job_ids}

    def probe(self) -> None:
        """Raise unless the store answers a query on its own tables. A SQLite
        file that was moved or deleted counts as unreachable even though open
        connections could still read it: new ones would find an empty database."""
        path = self.db.sqlite_path
        if path is not None and not os.path.exists(path):
            raise FileNotFoundError(f"the database file {path} is gone")
        with self.db.read() as conn:
            conn.execute(select(jobs.c.id).limit(1)).all()

    def has_tokens(self) -> bool:
        """Whether any API token was ever created (revoked ones included)."""
        with self.db.read() as conn:
            return bool(conn.execute(select(exists().select_from(tokens))).scalar_one())

    def has_active_tokens(self) -> bool:
        query = select(exists().where(tokens.c.revoked_at.is_(None)))
        with self.db.read() as conn:
            return bool(conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ jobs

    def job_page(
        self,
        *,
        text: str | None = None,
        tag: str | None = None,
        kind: str | None = None,
        state: JobState | None = None,
        sort: JobSort = "id",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[JobRow], int]:
        """One page of live jobs and how many match in all."""
        where = _job_filters(text, tag, kind, state)
        order = (
            [jobs.c.next_fire_at.is_(None), jobs.c.next_fire_at, jobs.c.id]
            if sort == "next"
            else [jobs.c.id]
        )
        query = select(jobs).where(*where).order_by(*order).limit(limit).offset(offset)
        count = select(func.count()).select_from(jobs).where(*where)
        with self.db.read() as conn:
            rows = [_job_row(r) for r in conn.execute(query)]
            total = int(conn.execute(count).scalar_one())
        return rows, total

    def jobs_by_ids(self, ids: Sequence[str]) -> dict[str, Job]:
        """Jobs by id, deleted ones included (their runs still show)."""
        if not ids:
            return {}
        query = select(jobs).where(jobs.c.id.in_(sorted(set(ids))))
        with self.db.read() as conn:
            found = (job_from_row(r) for r in conn.execute(query).mappings())
            return {job.id: job for job in found}

    def upcoming_jobs(self, *, until: datetime, limit: int) -> list[Job]:
        """Jobs that will fire by `until`, soonest first."""
        query = (
            select(jobs)
            .where(
                LIVE,
                jobs.c.paused.is_(False),
                jobs.c.broken.is_(None),
                jobs.c.next_fire_at <= until,
            )
            .order_by(jobs.c.next_fire_at, jobs.c.id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [job_from_row(r) for r in conn.execute(query).mappings()]

    def next_fires(self) -> list[tuple[str, datetime]]:
        """(job id, next fire time) of every job that will fire."""
        query = select(jobs.c.id, jobs.c.next_fire_at).where(
            LIVE, jobs.c.paused.is_(False), jobs.c.broken.is_(None), jobs.c.next_fire_at.isnot(None)
        )
        with self.db.read() as conn:
            return [(row[0], row[1]) for row in conn.execute(query)]

    # ------------------------------------------------------------------ runs

    def recent_outcomes(
        self, job_ids: Sequence[str], *, per_job: int = 20
    ) -> dict[str, list[Outcome]]:
        """Each job's latest finished runs, newest first: one short index walk
        per job (`ORDER BY id DESC LIMIT n` on (job_id, id)), in one statement."""
        out: dict[str, list[Outcome]] = {job_id: [] for job_id in job_ids}
        if not out:
            return out
        query = _latest_outcomes(self.db.dialect, len(out), per_job)
        params = {f"j{i}": job_id for i, job_id in enumerate(out)}
        with self.db.read() as conn:
            # Unpacked, not read by name: a page reads a thousand of these rows.
            for run_id, job_id, state, finished_at, took in conn.execute(query, params):
                seconds = None if took is None else round(float(took), 3)
                out[job_id].append(Outcome(run_id, job_id, _STATES[state], finished_at, seconds))
        for found in out.values():
            found.sort(key=lambda o: o.id, reverse=True)
        return out

    def job_records(self, job_id: str, states: Sequence[RunState], *, limit: int = 20) -> list[Run]:
        """A job's latest runs in `states` (its `missed` and `skipped` records)."""
        query = (
            select(runs)
            .where(runs.c.job_id == job_id, runs.c.state.in_([str(s) for s in states]))
            .order_by(runs.c.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def retries_of(self, run_id: int) -> list[Run]:
        """The runs that retry `run_id` (normally one)."""
        query = select(runs).where(runs.c.retry_of == run_id).order_by(runs.c.id)
        with self.db.read() as conn:
            return [run_from_row(r) for r in conn.execute(query).mappings()]

    def cancel_pending(self, run_id: int) -> bool:
        """Whether someone asked a running run to stop."""
        query = select(runs.c.cancel_requested).where(runs.c.id == run_id)
        with self.db.read() as conn:
            return bool(conn.execute(query).scalar_one_or_none())

    def active_counts(self) -> list[tuple[str, str, int]]:
        """(job id, state, count) of pending and running runs."""
        query = (
            select(runs.c.job_id, runs.c.state, func.count())
            .where(runs.c.state.in_(ACTIVE))
            .group_by(runs.c.job_id, runs.c.state)
        )
        with self.db.read() as conn:
            return [(row[0], row[1], int(row[2])) for row in conn.execute(query)]

    def finished_since(
        self, cursor: tuple[datetime, int], *, until: datetime, limit: int
    ) -> list[FinishedRun]:
        """Runs that finished after `cursor` (finished_at, id) and by `until`,
        in that order: the metrics endpoint reads each finished run once."""
        at, last_id = cursor
        after: ColumnElement[bool] = or_(
            runs.c.finished_at > at, and_(runs.c.finished_at == at, runs.c.id > last_id)
        )
        query: Select[Any] = (
            select(*_FINISHED_COLUMNS)
            .where(after, runs.c.finished_at <= until)
            .order_by(runs.c.finished_at, runs.c.id)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [_finished(row) for row in conn.execute(query)]


__all__ = ["FinishedRun", "JobRow", "JobSort", "JobState", "Outcome", "ViewQueries"]
