"""The `clocktower` command.

Each command is a short `@app.command()` function that parses its options,
calls the layer below and renders the result: a Rich table in a terminal,
JSON with `--json` (the REST API's shapes). Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from clocktower import cli_render
from clocktower.config import (
    Config,
    ConfigError,
    load_config,
    parse_bind,
    parse_database,
    redact_url,
)
from clocktower.model import ClocktowerError, InvalidSpec, Job, PythonTarget, RunState
from clocktower.node import (
    OPEN_ERRORS,
    FileJobs,
    NodeOptions,
    StoreUnavailable,
    configure_logging,
    open_store,
    settle_memory,
)
from clocktower.node import serve as serve_node
from clocktower.service import Service, missing_module
from clocktower.store import Store
from clocktower.store.migrate import current_revision
from clocktower.triggers import Trigger, fire_times, parse_expression, readable_form
from clocktower.triggers.localtime import to_instant
from clocktower.triggers.oneoff import parse_instant

EXIT_USAGE = 2

app = typer.Typer(
    name="clocktower",
    help="Clocktower: a self-hosted scheduler for an application's background jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point of the `clocktower` console script."""
    app()


@app.callback()
def _root() -> None:
    """Clocktower: a self-hosted scheduler for an application's background jobs."""


# --------------------------------------------------------------------------- shared helpers


def fail(message: str) -> NoReturn:
    """Print a one-line error to stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


@contextmanager
def cli_errors(flags: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn Clocktower errors into `fail`. `flags` maps an InvalidSpec field to the
    command-line flag that sets it, so the message names what the user typed."""
    try:
        yield
    except InvalidSpec as exc:
        if flags is None:
            fail(str(exc))
        field = exc.field or ""
        flag = flags.get(field) or flags.get(field.partition(".")[0])  # env.NAME: --env
        fail(f"{flag}: {exc.message}" if flag else exc.message)
    except ClocktowerError as exc:
        fail(str(exc))


def utc_iso(ts: float) -> str:
    """An instant as ISO-8601 UTC with a Z: 2025-03-30T01:00:00Z."""
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat() + "Z"


def local_iso(ts: float, zone: ZoneInfo) -> str:
    """An instant as ISO-8601 local time with its offset: 2025-03-30T03:00:00+02:00."""
    return datetime.fromtimestamp(ts, zone).isoformat()


# --------------------------------------------------------------------------- next

TzOption = Annotated[
    str,
    typer.Option(
        "--tz",
        envvar="CLOCKTOWER_TIMEZONE",
        help="IANA time zone the schedule is evaluated in.",
    ),
]


@app.command("next")
def next_command(
    expr: Annotated[
        str,
        typer.Argument(
            help="A cron expression, an interval ('every 90s', '7 days at 16:00'), "
            "an instant ('2026-12-01 09:00') or a readable schedule ('daily at 03:00').",
            show_default=False,
        ),
    ],
    tz: TzOption = "UTC",
    count: Annotated[int, typer.Option("--count", "-n", help="How many fire times.")] = 5,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Show fire times after this instant (ISO-8601; no offset means --tz). "
            "Default: now.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Preview the next fire times of a schedule, with a readable description."""
    if not 1 <= count <= 10_000:
        fail(f"--count: {count} is out of range: use 1 to 10000")
    with cli_errors({"tz": "--tz"}):
        trigger = parse_expression(expr, tz)
        after = _parse_from(start, trigger.zone) if start is not None else time.time()
    times = list(islice(fire_times(trigger, after), count))
    if as_json:
        typer.echo(json.dumps(_next_json(expr, trigger, times), indent=2))
    else:
        _print_next(trigger, times, after)


def _parse_from(text: str, zone: ZoneInfo) -> float:
    if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text):
        text = text.strip() + " 00:00"  # a date alone means its midnight
    try:
        return to_instant(parse_instant(text), zone)
    except (ValueError, OverflowError) as exc:
        fail(f"--from: {exc}")


def _next_json(expr: str, trigger: Trigger, times: list[float]) -> dict[str, Any]:
    return {
        "expression": expr,
        "tz": trigger.zone.key,
        "description": trigger.describe(),
        "readable": readable_form(trigger),
        "fire_times": [{"utc": utc_iso(ts), "local": local_iso(ts, trigger.zone)} for ts in times],
    }


def _print_next(trigger: Trigger, times: list[float], after: float) -> None:
    console = Console(highlight=False)
    console.print(trigger.describe(), style="bold", markup=False)
    if (text := readable_form(trigger)) is not None:
        console.print(f"readable: {text}", markup=False)
    if not times:
        console.print(f"No fire times after {utc_iso(after)}.", markup=False)
        return
    table = Table("#", "UTC", f"Local ({trigger.zone.key})")
    for number, ts in enumerate(times, start=1):
        local = datetime.fromtimestamp(ts, trigger.zone)
        table.add_row(str(number), utc_iso(ts), f"{local.isoformat()} {local.tzname()}")
    console.print(table)


# =========================================================================== operations
#
# Every command below opens the store named by --database (or CLOCKTOWER_DATABASE,
# or the [server] table of --config) and calls `clocktower.service`.
# In help texts "\\[server]" keeps Rich markup from taking it for a style and dropping it.

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        envvar="CLOCKTOWER_DATABASE",
        help="The store: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB. "
        "Default: the config's \\[server] database, else sqlite:///clocktower.db.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="CLOCKTOWER_CONFIG",
        help="clocktower.toml to read \\[server] settings (and, for serve, jobs) from.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]

jobs_app = typer.Typer(help="List, show, add, edit, remove, pause and resume jobs.")
db_app = typer.Typer(help="The store's schema.")
app.add_typer(jobs_app, name="jobs")
app.add_typer(db_app, name="db")

ACTOR = f"cli:{getpass.getuser()}"


def load(config: Path | None) -> Config:
    with cli_errors():
        return load_config(config)


def open_service(database: str | None, config: Path | None = None) -> Service:
    cfg = load(config)
    store = open_database(flag_setting(database, cfg.server.database, parse_database, "--database"))
    # Whether a Python target imports is for the server to say, with its sys.path.
    return Service(
        store, default_tz=cfg.server.timezone, defaults=cfg.defaults, checks_imports=False
    )


def flag_setting(
    value: str | None, default: str, parse: Callable[[object, str], str], flag: str
) -> str:
    """A `[server]` setting given as a flag (--database, --bind), checked as the
    config checks its own (it already checked the file's and the environment's);
    without the flag, `default`. An unchecked --bind port out of range would be
    wrapped around by the socket layer and listen somewhere else."""
    if not value:
        return default
    field = flag.removeprefix("--")
    with cli_errors({field: flag}):
        return parse(value, field)


@contextmanager
def store_errors(url: str) -> Iterator[None]:
    """A store that cannot be opened is one line naming its URL (password hidden),
    not a driver's traceback."""
    try:
        yield
    except InvalidSpec as exc:
        fail(f"database {redact_url(url)}: {exc.message}")
    except OPEN_ERRORS as exc:
        fail_opening(url, exc)


def fail_opening(url: str, exc: BaseException) -> NoReturn:
    fail(f"database {redact_url(url)}: {store_problem(exc, url)}")


def store_problem(exc: BaseException, url: str) -> str:
    """The driver's own words, first line only (psycopg adds hints, SQLAlchemy a
    link), and never the URL's password, should a driver repeat it."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    password = urlsplit(url).password
    for secret in {password, unquote(password)} if password else ():
        # Whole words only: a one-letter password must not mangle the message.
        text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text


def open_database(url: str) -> Store:
    with store_errors(url):
        return open_store(url)


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def console() -> Console:
    return Console(highlight=False)


# --------------------------------------------------------------------------- serve


@app.command()
def serve(
    config: ConfigOption = None,
    database: DatabaseOption = None,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            envvar="CLOCKTOWER_BIND",
            help="host:port of the API and dashboard. Default 127.0.0.1:8700.",
            show_default=False,
        ),
    ] = None,
    no_http: Annotated[
        bool, typer.Option("--no-http", help="Run the scheduler only, without the API.")
    ] = False,
) -> None:
    """Run a node: the scheduler, plus the API and dashboard on --bind."""
    cfg = load(config)
    server = cfg.server
    address = flag_setting(bind, server.bind, parse_bind, "--bind")
    url = flag_setting(database, server.database, parse_database, "--database")
    with store_errors(url):
        Store(url).close()  # a URL it cannot use or a driver not installed: no connection yet
    configure_logging(server.log_level)
    options = NodeOptions(
        database=url,
        node_id=server.node_id,
        timezone=server.timezone,
        max_concurrent_runs=server.max_concurrent_runs,
        lease=server.lease,
        lookahead=server.lookahead,
        shutdown_grace=server.shutdown_grace,
        artifacts_dir=server.artifacts_dir,
        retention_runs=server.retention_runs or 10**9,
        retention_days=server.retention_days or 36500,
        defaults=cfg.defaults,
        own_process=True,
    )
    file_jobs = None
    if cfg.source is not None:
        file_jobs = FileJobs(cfg.source, dict(cfg.jobs), set(cfg.paused), set(cfg.enabled))
    http = None if no_http else http_runner(address)
    with cli_errors():
        try:
            asyncio.run(serve_node(options, file_jobs, extra=http))
        except OSError as exc:  # the port is taken, the database folder unwritable, …
            fail(str(exc))
        except StoreUnavailable as exc:  # opened by the node, once its signals are set
            fail_opening(url, exc.__cause__ or exc)


def http_runner(bind: str) -> Any:
    """The API and dashboard beside the loop, on `bind`."""
    from clocktower.api import check_bind_safety, serve_http

    host, _, port = bind.rpartition(":")
    host = host.strip("[]")

    def started(_url: str) -> None:
        settle_memory()  # the app is built too: start-up is over

    async def run(service: Service, loop: Any) -> None:
        refusal = await asyncio.to_thread(check_bind_safety, service.store, host)
        if refusal:
            raise InvalidSpec(refusal, field="bind")
        await serve_http(service, loop, host=host, port=int(port), on_ready=started)

    return run


# --------------------------------------------------------------------------- check


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The clocktower.toml to validate.")],
    as_json: JsonOption = False,
) -> None:
    """Validate a config file: its problems (each job's first), naming file, job and field."""
    try:
        cfg = load_config(file)
    except ConfigError as exc:
        if as_json:
            emit({"ok": False, "problems": [str(p) for p in exc.problems]})
        else:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None
    except InvalidSpec as exc:
        fail(str(exc))
    rows = []
    for job_id, spec in cfg.jobs.items():
        job = Job(spec=spec, paused=job_id in cfg.paused)
        rows.append(
            {
                "id": job_id,
                "schedule": cli_render.schedule_text(job),
                "description": cli_render.describe(job),
            }
        )
    if as_json:
        emit({"ok": True, "jobs": rows})
        return
    out = console()
    out.print(f"{file}: OK, {len(rows)} job(s)", markup=False)
    for row in rows:
        out.print(
            f"  {row['id']}: {row['schedule']} — {row['description'] or 'no schedule'}",
            markup=False,
        )


# --------------------------------------------------------------------------- jobs


@jobs_app.command("list")
def jobs_list(
    database: DatabaseOption = None,
    config: ConfigOption = None,
    tag: Annotated[str | None, typer.Option(help="Only jobs with this tag.")] = None,
    text: Annotated[str | None, typer.Option("--search", help="Ids containing this.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Jobs with their schedule, next run and last result."""
    service = open_service(database, config)
    jobs = service.list_jobs(tag=tag, text=text)
    outcomes = service.store.recent_outcomes([j.id for j in jobs])
    if as_json:
        emit([cli_render.job_json(j, outcomes.get(j.id)) for j in jobs])
    else:
        console().print(cli_render.jobs_table(jobs, outcomes, service.clock()))


@jobs_app.command("show")
def jobs_show(
    job_id: str,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One job: its definition, next fire times and recent runs."""
    service = open_service(database, config)
    with cli_errors():
        job = service.get_job(job_id)
        upcoming = service.preview(job_id, count=5)
    runs = service.list_runs(job_id=job_id, limit=10)
    if as_json:
        data = cli_render.job_json(job, service.store.recent_outcomes([job_id])[job_id])
        emit(
            {
                **data,
                "upcoming": [cli_render.iso(t) for t in upcoming],
                "runs": [cli_render.run_json(r) for r in runs],
            }
        )
    else:
        cli_render.print_job(console(), job, runs, upcoming)


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; a VALUE that reads as TOML (numbers, booleans, arrays,
    inline tables, quoted strings) is taken as such, anything else as text."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--set: expected KEY=VALUE, got {pair!r}")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        values[key.strip()] = value
    return values


def definition_from_flags(flags: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    data = {k: v for k, v in flags.items() if v is not None}
    data.update(parse_settings(pairs))
    return data


@jobs_app.command("add")
def jobs_add(
    job_id: Annotated[str, typer.Argument(help="The job's id, a slug: trash-cleanup.")],
    command: Annotated[str | None, typer.Option(help="A shell command line.")] = None,
    url: Annotated[str | None, typer.Option(help="An HTTP endpoint to call.")] = None,
    call: Annotated[str | None, typer.Option(help="A Python function: pkg.mod:func.")] = None,
    cron: Annotated[str | None, typer.Option(help="A cron expression.")] = None,
    every: Annotated[
        str | None, typer.Option(help="An interval: 90s, 7d, 7 days at 16:00.")
    ] = None,
    at: Annotated[str | None, typer.Option(help="One instant, ISO-8601.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Readable: 'daily at 03:00'.")] = None,
    tz: Annotated[str | None, typer.Option(help="IANA zone of the schedule.")] = None,
    timeout: Annotated[str | None, typer.Option(help="Time limit per run: 10m.")] = None,
    settings: Annotated[list[str], typer.Option("--set", help="Any other field: KEY=VALUE.")] = [],  # noqa: B006
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a job (the same checks as the config file and the API)."""
    data = definition_from_flags(
        {
            "command": command,
            "url": url,
            "call": call,
            "cron": cron,
            "every": every,
            "at": at,
            "schedule": schedule,
            "tz": tz,
            "timeout": timeout,
        },
        settings,
    )
    service = open_service(database, config)
    with cli_errors():
        job, _ = service.create_job(data, job_id=job_id, actor=ACTOR, source="cli")
    show_changed(service, job, as_json)


@jobs_app.command("edit")
def jobs_edit(
    job_id: str,
    cron: Annotated[str | None, typer.Option(help="A cron expression.")] = None,
    every: Annotated[str | None, typer.Option(help="An interval.")] = None,
    at: Annotated[str | None, typer.Option(help="One instant, ISO-8601.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Readable: 'daily at 03:00'.")] = None,
    timeout: Annotated[str | None, typer.Option(help="Time limit per run.")] = None,
    settings: Annotated[list[str], typer.Option("--set", help="Any field: KEY=VALUE.")] = [],  # noqa: B006
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change some fields of a job; a new schedule replaces the old one."""
    changes = definition_from_flags({"timeout": timeout}, settings)
    new_trigger = {
        k: v for k, v in {"cron": cron, "every": every, "at": at, "schedule": schedule}.items() if v
    }
    if new_trigger:
        changes |= {"cron": None, "every": None, "at": None, "schedule": None, **new_trigger}
    service = open_service(database, config)
    with cli_errors():
        job = service.update_job(job_id, changes, actor=ACTOR)
    show_changed(service, job, as_json)


def show_changed(service: Service, job: Job, as_json: bool) -> None:
    if as_json:
        emit(cli_render.job_json(job))
        return
    when = cli_render.iso(job.next_fire_at) or "not scheduled"
    console().print(f"{job.id}: {cli_render.schedule_text(job)}; next run {when}", markup=False)
    target = job.spec.target
    if isinstance(target, PythonTarget) and (problem := missing_module(target.call)):
        # Only a hint: the server, whose sys.path may differ, is the one that decides.
        typer.echo(
            f"warning: {problem} from here; the server marks the job broken "
            "if it cannot import it either",
            err=True,
        )


@jobs_app.command("rm")
def jobs_rm(
    job_id: str,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a job: it stops firing; a run in progress is cancelled; history is kept."""
    service = open_service(database, config)
    with cli_errors():
        cancelled = service.delete_job(job_id, actor=ACTOR)
    if as_json:
        emit(cli_render.delete_json(job_id, cancelled))
    else:
        typer.echo(f"{job_id}: deleted")


@jobs_app.command("pause")
def jobs_pause(
    job_id: str,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop firing a job until it is resumed."""
    service = open_service(database, config)
    with cli_errors():
        job = service.pause(job_id, actor=ACTOR)
    if as_json:
        emit_job(service, job)
    else:
        typer.echo(f"{job_id}: paused")


@jobs_app.command("resume")
def jobs_resume(
    job_id: str,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a paused job (missed fire times are not caught up unless catch_up_paused)."""
    service = open_service(database, config)
    with cli_errors():
        job = service.resume(job_id, actor=ACTOR)
    if as_json:
        emit_job(service, job)
    else:
        typer.echo(f"{job_id}: resumed; next run {cli_render.iso(job.next_fire_at) or '—'}")


def emit_job(service: Service, job: Job) -> None:
    """A job with its recent results, as `jobs list --json` and the API show it."""
    emit(cli_render.job_json(job, service.store.recent_outcomes([job.id]).get(job.id, [])))


# --------------------------------------------------------------------------- runs


@app.command()
def trigger(
    job_id: str,
    env: Annotated[list[str], typer.Option("--env", "-e", help="KEY=VALUE for this run.")] = [],  # noqa: B006
    payload: Annotated[str | None, typer.Option(help="JSON payload for this run.")] = None,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a job now (recorded as trigger = manual)."""
    overrides = env_overrides(env)
    data = None
    if payload is not None:
        try:
            data = json.loads(payload)
        except json.JSONDecodeError as exc:
            fail(f"--payload: not JSON: {exc}")
    service = open_service(database, config)
    with cli_errors({"env": "--env"}):  # the service checks the names as a job's env
        run = service.trigger_now(job_id, actor=ACTOR, payload=data, env=overrides)
    if as_json:
        emit(cli_render.run_json(run))
    else:
        typer.echo(f"run {run.id} of {job_id} created")


def env_overrides(pairs: list[str]) -> dict[str, str]:
    """--env KEY=VALUE pairs (their names are checked by `Service.trigger_now`)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"--env: expected KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


@app.command()
def cancel(
    run_id: int,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a run: a waiting one at once, a running one is stopped by its node."""
    service = open_service(database, config)
    with cli_errors():
        run = service.cancel(run_id, actor=ACTOR)
    if as_json:
        emit(cli_render.run_json(run))
    else:
        typer.echo(f"run {run_id}: {'cancelling' if not run.state.final else run.state}")


@app.command()
def runs(
    job_id: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    state: Annotated[list[RunState], typer.Option("--state", help="Only runs in this state.")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent runs, newest first."""
    if limit < 1:
        fail(f"--limit: {limit} is out of range: use 1 or more")
    service = open_service(database, config)
    found = service.list_runs(job_id=job_id, states=state, limit=limit)
    if job_id is not None and not found:
        # A deleted job's runs are still listed; a job never seen (a typo) is an error.
        with cli_errors():
            service.get_job(job_id)
    if as_json:
        emit([cli_render.run_json(r) for r in found])
    else:
        console().print(cli_render.runs_table(found))


@app.command()
def logs(
    run_id: int,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until it ends.")
    ] = False,
    timestamps: Annotated[
        bool, typer.Option("--timestamps", "-t", help="Prefix each line with its time.")
    ] = False,
    database: DatabaseOption = None,
    config: ConfigOption = None,
) -> None:
    """A run's output (stdout and stderr, interleaved)."""
    service = open_service(database, config)
    after, shown_dropped = 0, 0
    while True:
        with cli_errors():
            # The state before the output: a run's output is committed no later
            # than its end, so once it has ended the next read gets all of it.
            ended = follow and service.get_run(run_id).state.final
            chunks, dropped = service.output(run_id, after=after)
        for chunk in chunks:
            # Marked where it happened: between head and tail, and again while
            # following a run whose output keeps being cut.
            if chunk.part == "tail" and dropped > shown_dropped:
                typer.echo(f"[… {dropped - shown_dropped} bytes of output omitted …]")
                shown_dropped = dropped
            for ts, stream, text in chunk.lines:
                prefix = f"{utc_iso(ts)} " if timestamps else ""
                typer.echo(f"{prefix}{text}", err=stream == "stderr")
            after = chunk.id
        if not follow or (ended and not chunks):
            return
        time.sleep(0.5)


@app.command()
def backfill(
    job_id: str,
    start: Annotated[
        str, typer.Option("--from", help="First instant (ISO-8601, UTC if no offset).")
    ],
    end: Annotated[str, typer.Option("--to", help="Last instant (ISO-8601).")],
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a run for each fire time of JOB in a past range, oldest first."""
    begin, finish = _instant(start, "--from"), _instant(end, "--to")
    service = open_service(database, config)
    with cli_errors({"to": "--to"}):
        created = service.backfill(job_id, begin, finish, actor=ACTOR)
    if as_json:
        emit([cli_render.run_json(r) for r in created])
        return
    typer.echo(f"{len(created)} run(s) of {job_id} created:")
    for run in created:
        typer.echo(f"  run {run.id} for {cli_render.iso(run.scheduled_for)}")


def _instant(text: str, flag: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{flag}: {text!r} is not an ISO-8601 date or time")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(
    database: DatabaseOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Create the schema, or bring it to the current version."""
    cfg = load(config)
    store = open_database(flag_setting(database, cfg.server.database, parse_database, "--database"))
    revision = current_revision(store.db)
    store.close()
    if as_json:
        emit({"revision": revision})
    else:
        typer.echo("database is up to date")


# --------------------------------------------------------------------------- tokens

tokens_app = typer.Typer(help="API tokens: create (shown once), list, revoke.")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="Who uses it; written to the audit trail.")],
    scope: Annotated[
        str, typer.Option("--scope", help="read, operate (pause, trigger, cancel) or admin.")
    ] = "read",
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token. Its secret is printed once and stored only as a hash."""
    from clocktower.api import tokens

    service = open_service(database, config)
    with cli_errors({"scope": "--scope", "name": "--name"}):
        token = tokens.create_token(service.store, name, scope)
    if as_json:
        emit({"name": token.name, "scope": token.scope, "token": token.secret})
    else:
        typer.echo(token.secret)
        typer.echo(f"token {token.name!r} ({token.scope}) created; it is not shown again", err=True)


@tokens_app.command("list")
def tokens_list(
    database: DatabaseOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Tokens with their scope and last use (never their secret)."""
    from clocktower.api import tokens

    found = tokens.list_tokens(open_service(database, config).store)
    rows = [
        {
            "name": t.name,
            "scope": t.scope,
            "created_at": cli_render.iso(t.created_at),
            "last_used_at": cli_render.iso(t.last_used_at),
            "revoked_at": cli_render.iso(t.revoked_at),
        }
        for t in found
    ]
    if as_json:
        emit(rows)
        return
    table = Table("name", "scope", "created", "last used", "revoked")
    for row in rows:
        table.add_row(*[str(v or "—") for v in row.values()])
    console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    name: str,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: running servers refuse it within a second."""
    from clocktower.api import tokens

    if not tokens.revoke_token(open_service(database, config).store, name):
        fail(f"no active token named {name!r}")
    if as_json:
        emit({"name": name, "revoked": True})
    else:
        typer.echo(f"token {name!r} revoked")
