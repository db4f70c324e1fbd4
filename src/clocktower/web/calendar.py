"""The week ahead: upcoming fire times, day by day (today and the next six), in one zone.

Fire times come from the triggers, not the store: only each job's next fire
time is stored. The work is bounded (the soonest `job_limit` jobs, at most
`per_job` fire times each): a job that fires more often than that in a week
is listed once as frequent, with its schedule, instead of filling every day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from clocktower.model import InvalidSpec, Job
from clocktower.service import Service
from clocktower.triggers.base import fire_times, to_datetime
from clocktower.triggers.localtime import resolve_local_date


@dataclass(slots=True)
class Entry:
    at: datetime  # local to the week's zone
    job_id: str


@dataclass(slots=True)
class Day:
    day: date
    entries: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class Frequent:
    job_id: str
    schedule: str


@dataclass(slots=True)
class Week:
    zone: str
    days: list[Day]
    frequent: list[Frequent]
    truncated: bool  # more jobs fire this week than the calendar read


def job_fire_times(service: Service, job: Job, until: datetime, cap: int) -> list[datetime] | None:
    """The job's fire times from its next one to `until`; None when over `cap`."""
    if job.next_fire_at is None:
        return []
    try:
        trigger = service.trigger(job.spec)
    except InvalidSpec:
        return []
    times = [job.next_fire_at]
    for ts in fire_times(trigger, job.next_fire_at.timestamp(), until.timestamp()):
        if len(times) >= cap:
            return None
        times.append(to_datetime(ts))
    return times


def build_week(
    service: Service,
    now: datetime,
    zone: ZoneInfo,
    *,
    job_limit: int = 300,
    per_job: int = 48,
) -> Week:
    start = now.astimezone(zone).date()
    days = {start + timedelta(days=i): Day(start + timedelta(days=i)) for i in range(7)}
    until = to_datetime(resolve_local_date(start + timedelta(days=7), time(0), zone))
    jobs = service.store.upcoming_jobs(until=until, limit=job_limit + 1)
    truncated = len(jobs) > job_limit
    frequent = []
    for job in jobs[:job_limit]:
        times = job_fire_times(service, job, until, per_job)
        if times is None:
            frequent.append(Frequent(job.id, _schedule(service, job)))
            continue
        for at in times:
            local = at.astimezone(zone)
            if local.date() in days:
                days[local.date()].entries.append(Entry(local, job.id))
    ordered = [days[d] for d in sorted(days)]
    for day in ordered:
        day.entries.sort(key=lambda e: (e.at, e.job_id))
    return Week(zone=zone.key, days=ordered, frequent=frequent, truncated=truncated)


def _schedule(service: Service, job: Job) -> str:
    try:
        return service.trigger(job.spec).describe()
    except InvalidSpec as exc:
        return str(exc)
