"""How the CLI shows jobs and runs: Rich tables for people, JSON for machines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from clocktower.api.schemas import DeleteOut, job_out, job_row, run_out, success_rate
from clocktower.model import Job, Run, RunState
from clocktower.spec import job_to_mapping
from clocktower.store.views import Outcome
from clocktower.triggers import compile_trigger, readable_form

STATE_STYLE = {
    RunState.SUCCEEDED: "green",
    RunState.FAILED: "red",
    RunState.TIMED_OUT: "red",
    RunState.LOST: "red",
    RunState.CANCELLED: "yellow",
    RunState.SKIPPED: "yellow",
    RunState.MISSED: "yellow",
    RunState.RUNNING: "cyan",
    RunState.PENDING: "cyan",
    RunState.SCHEDULED: "blue",
}


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(dt: datetime | None, now: datetime) -> str:
    if dt is None:
        return "—"
    seconds = (dt - now).total_seconds()
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{span / size:.0f}{unit}"
            break
    else:
        text = f"{span:.0f}s"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def schedule_text(job: Job) -> str:
    trigger = job.spec.trigger
    if trigger is None:
        after = ", ".join(job.spec.after)
        return f"after {after}" if after else "manual"
    try:
        compiled = compile_trigger(trigger, job_id=job.id)
    except Exception:
        return f"{trigger.kind} {trigger.expr}"
    text = readable_form(compiled) or trigger.expr
    return text if trigger.tz == "UTC" else f"{text} ({trigger.tz})"


def describe(job: Job) -> str | None:
    if job.spec.trigger is None:
        return None
    try:
        return compile_trigger(job.spec.trigger, job_id=job.id).describe()
    except Exception as exc:
        return f"invalid schedule: {exc}"


def job_json(job: Job, outcomes: list[Outcome] | None = None) -> dict[str, Any]:
    """A job as the REST API shows it, so `--json` and the API agree."""
    return job_out(job_row(job), outcomes).model_dump(mode="json")


def run_json(run: Run) -> dict[str, Any]:
    """A run as the REST API shows it."""
    return run_out(run).model_dump(mode="json")


def delete_json(job_id: str, cancelled_runs: list[int]) -> dict[str, Any]:
    """A deleted job as the REST API's DELETE answers: the runs asked to stop."""
    return DeleteOut(id=job_id, deleted=True, cancelled_runs=cancelled_runs).model_dump(mode="json")


def state_text(run: Run | Outcome | None) -> str:
    if run is None:
        return "—"
    style = STATE_STYLE.get(run.state, "")
    return f"[{style}]{run.state}[/]"


def jobs_table(jobs: list[Job], outcomes: dict[str, list[Outcome]], now: datetime) -> Table:
    table = Table("job", "kind", "schedule", "next run", "last result", "success", "status")
    for job in jobs:
        recent = outcomes.get(job.id, [])
        last = recent[0] if recent else None
        rate = success_rate(recent)
        status = "[red]broken[/]" if job.broken else "[yellow]paused[/]" if job.paused else "active"
        last_text = state_text(last)
        if last and last.finished_at:
            last_text += f" {relative(last.finished_at, now)}"
        table.add_row(
            job.id,
            job.spec.target.kind,
            schedule_text(job),
            f"{relative(job.next_fire_at, now)}  {iso(job.next_fire_at) or ''}".strip(),
            last_text,
            f"{rate:.0%}" if rate is not None else "—",
            status,
        )
    return table


def runs_table(runs: list[Run]) -> Table:
    table = Table("run", "job", "state", "trigger", "attempt", "for", "duration", "detail")
    for run in runs:
        detail = run.error or ""
        if run.exit_code is not None and not run.error:
            detail = f"exit {run.exit_code}"
        if run.state is RunState.RUNNING and run.progress_done is not None:
            total = f"/{run.progress_total:g}" if run.progress_total else ""
            detail = f"progress {run.progress_done:g}{total}"
        table.add_row(
            str(run.id),
            run.job_id,
            state_text(run),
            str(run.trigger),
            str(run.attempt),
            iso(run.scheduled_for) or "",
            f"{run.duration:.2f}s" if run.duration is not None else "—",
            detail,
        )
    return table


def print_job(console: Console, job: Job, runs: list[Run], upcoming: list[datetime]) -> None:
    console.print(f"[bold]{job.id}[/]  {job.spec.description}")
    console.print(f"schedule: {schedule_text(job)}  —  {describe(job) or 'no schedule'}")
    if job.broken:
        console.print(f"[red]broken:[/] {job.broken}", markup=True)
    if job.paused:
        console.print("[yellow]paused[/]")
    console.print("next: " + (", ".join(iso(t) or "" for t in upcoming) or "—"))
    console.print_json(data=job_to_mapping(job.spec))
    if runs:
        console.print(runs_table(runs))
