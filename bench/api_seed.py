"""Seed a SQLite store for bench/api.py: N jobs with a realistic mix of
schedules and targets, and M finished runs each (executemany, a million rows
in seconds)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from clocktower.model import CommandTarget, HttpTarget, JobSpec, Target, TriggerSpec
from clocktower.spec import job_to_mapping
from clocktower.store import Store
from clocktower.store.schema import jobs
from clocktower.triggers import compile_trigger
from clocktower.triggers.base import to_datetime

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
STATES = ["succeeded"] * 93 + ["failed"] * 5 + ["timed_out", "skipped"]
BATCH = 50_000


def schedule(i: int) -> TriggerSpec:
    """One of a few schedule shapes, as people write them."""
    zone = ZONES[i % len(ZONES)]
    shape = i % 5
    if shape == 0:
        return TriggerSpec("cron", f"{i % 60} {i % 24} * * *", zone)
    if shape == 1:
        return TriggerSpec("schedule", f"daily at {i % 24:02d}:{(i * 7) % 60:02d}", zone)
    if shape == 2:
        return TriggerSpec("schedule", "mondays at 06:00", zone)
    if shape == 3:
        return TriggerSpec("every", f"{1 + i % 12}h", zone)
    return TriggerSpec("cron", f"{i % 60} {i % 24} {1 + i % 28} * *", zone)


def target(i: int) -> Target:
    if i % 3 == 2:
        return HttpTarget(url=f"https://app.example/cron/task-{i}", method="POST")
    return CommandTarget(command=f"python manage.py task_{i} --days {1 + i % 90}")


def job_rows(count: int, now: datetime) -> list[dict[str, Any]]:
    """The jobs, each with its real next fire time after now (none is due)."""
    after = datetime.now(UTC).timestamp() + 60
    rows = []
    for i in range(count):
        tags = ("bench", "even" if i % 2 == 0 else "odd")
        spec = JobSpec(
            id=f"job-{i:05d}",
            target=target(i),
            trigger=schedule(i),
            description=f"benchmark job {i}",
            tags=tags,
        )
        next_ts = compile_trigger(spec.trigger).next_after(after)  # type: ignore[arg-type]
        rows.append(
            {
                "id": spec.id,
                "spec": job_to_mapping(spec),
                "kind": spec.target.kind,
                "tags": f",{','.join(tags)},",
                "after": "",
                "source": "api",
                "next_fire_at": to_datetime(next_ts) if next_ts else None,
                "created_at": now - timedelta(days=200),
                "updated_at": now - timedelta(days=200),
            }
        )
    return rows


def stamp(value: datetime) -> str:
    """How the store writes an instant in SQLite: naive UTC text."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def run_rows(job_ids: list[str], per_job: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """Oldest first across all jobs, so a job's runs spread over the id space."""
    rng = random.Random(42)
    for age in range(per_job, 0, -1):
        fire = now - timedelta(hours=age)
        for job_id in job_ids:
            state = rng.choice(STATES)
            start = fire + timedelta(milliseconds=rng.randint(1, 40))
            took = timedelta(seconds=rng.uniform(0.2, 120))
            ran = state != "skipped"
            yield (
                job_id,
                stamp(fire),
                stamp(fire),
                "schedule",
                "schedule",
                state,
                "bench-node",
                stamp(fire),
                stamp(start) if ran else None,
                stamp(start + took) if ran else stamp(fire),
                (0 if state == "succeeded" else 1) if ran else None,
                None if state == "succeeded" else f"{state}: details of run at {fire:%H:%M}",
            )


INSERT_RUN = """
INSERT INTO runs (job_id, scheduled_for, due_at, fire_key, "trigger", state, node,
                  created_at, started_at, finished_at, exit_code, error,
                  attempt, queued, cancel_requested, priority, output_bytes, output_dropped)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, 0, 0, 0, 0)
"""


def seed(path: str, job_count: int, per_job: int) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    rows = job_rows(job_count, now)
    with store.db.write() as conn:
        conn.execute(jobs.insert(), rows)
    store.close()
    raw = sqlite3.connect(path)
    try:
        raw.execute("PRAGMA synchronous=OFF")
        rows_iter = run_rows([r["id"] for r in rows], per_job, now)
        while batch := [row for _, row in zip(range(BATCH), rows_iter, strict=False)]:
            raw.executemany(INSERT_RUN, batch)
        raw.commit()
        raw.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
