"""One `clocktower serve` process: open the store, apply the config file's jobs,
run the loop, and shut down gracefully on SIGTERM.

Signals: the first SIGTERM or SIGINT stops claiming and lets running runs
finish within `shutdown_grace`, then interrupts them (recorded as failed, so
their retry policy applies). A second signal interrupts them at once.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import logging
import logging.handlers
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from clocktower.engine import Engine, EngineSettings, Loop, LoopSettings
from clocktower.model import JobSpec, Policies
from clocktower.service import CANNOT_IMPORT, ReconcileReport, Service
from clocktower.store import Store

log = logging.getLogger("clocktower")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_BATCH = 0.01  # seconds the log thread waits for more records once it wrote all
LOG_LINES = 1000  # lines the log thread writes at once at most


class _Enqueue(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The stdlib formats the whole record here, in the caller's thread.
        # Only the message is fixed now (its arguments may change later); the
        # listener's thread adds the time and any traceback, and writes it.
        record.msg = record.getMessage()
        record.args = None
        return record


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """Formats records into a buffer that `write_out` writes in one go (at
    the latest every `LOG_LINES` lines). A write that fails is reported as a
    logging error and its lines are lost; the next write tries again."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []
        self._last: logging.LogRecord | None = None  # named when a write fails

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        self._last = record
        if len(self._pending) >= LOG_LINES:
            self.write_out()

    def write_out(self) -> None:
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        try:
            self.stream.write(text)
            self.flush()
        except Exception:
            if self._last is not None:
                self.handleError(self._last)  # "--- Logging error ---", as emit would


class _Listener(logging.handlers.QueueListener):
    """Writes queued records from its thread, many at a time: a node running
    short jobs logs a line per run, and a write per line, or a thread woken
    per line, takes the GIL from the runs as often (bench/firing.py (a): 1.4
    thread switches per run). Once the queue is empty it writes what it has,
    naps `LOG_BATCH` seconds so that records gather, then blocks: an idle
    node costs nothing."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord], lines: _Lines) -> None:
        super().__init__(records, lines)
        self.records = records
        self.lines = lines

    def dequeue(self, block: bool) -> logging.LogRecord:
        try:
            return self.records.get_nowait()
        except queue.Empty:
            if not block:
                raise
        self.lines.write_out()
        time.sleep(LOG_BATCH)
        return self.records.get()

    def stop(self) -> None:
        super().stop()
        self.lines.write_out()  # what came with the last records


def configure_logging(level: str) -> None:
    """Log to stderr from a thread of its own: the event loop only queues each
    record, so a slow terminal or log pipe never holds up a run's start (the
    stdlib's QueueHandler/QueueListener pattern)."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    lines = _Lines()
    lines.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    listener = _Listener(records, lines)
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]
    root.setLevel(level.upper())
    listener.start()
    atexit.register(listener.stop)  # writes what is still queued


@dataclass(frozen=True, slots=True)
class NodeOptions:
    database: str
    node_id: str
    timezone: str = "UTC"
    max_concurrent_runs: int = 8
    lease: float = 30.0
    lookahead: float = 2.0
    shutdown_grace: float = 30.0
    artifacts_dir: Path = Path("clocktower-artifacts")
    retention_runs: int = 1000
    retention_days: float = 30.0
    defaults: Policies = field(default_factory=Policies)
    # The process is the node's alone (`clocktower serve`): what start-up
    # built is set aside from garbage collection (see `settle_memory`).
    own_process: bool = False


@dataclass(slots=True)
class FileJobs:
    """The jobs of one config file, to reconcile on start."""

    source: str
    jobs: dict[str, JobSpec]
    paused: set[str]  # declared paused = true / enabled = false
    enabled: set[str] = field(default_factory=set)  # declared paused = false / enabled = true


# What opening a store raises when its URL is wrong or its server cannot be
# reached: SQLAlchemy's errors (a URL it cannot parse, a refused connection, a
# failed login), Alembic's (a schema newer than this version), a driver that is
# not installed, a port that is not a number, a folder that cannot be created.
OPEN_ERRORS = (SQLAlchemyError, CommandError, ImportError, ValueError, OSError)


class StoreUnavailable(Exception):
    """The node could not open its store; the cause says why. Raised only
    while it starts: a store that fails later, while it runs, is another error."""


def open_store(url: str) -> Store:
    store = Store(url)
    store.upgrade()
    return store


def apply_file(service: Service, file_jobs: FileJobs | None) -> ReconcileReport | None:
    if file_jobs is None:
        return None
    report = service.reconcile(
        file_jobs.jobs,
        file_jobs.paused,
        file_jobs.enabled,
        source=file_jobs.source,
        actor="config",
    )
    for job_id, reason in report.broken.items():
        log.error("job %s is broken and will not run: %s", job_id, reason)
    log.info(
        "config %s: %d added, %d changed, %d unchanged, %d disabled",
        file_jobs.source.removeprefix("file:"),
        len(report.added),
        len(report.changed),
        len(report.unchanged),
        len(report.disabled),
    )
    return report


def mark_broken_jobs(service: Service) -> None:
    """Jobs whose Python target no longer imports are kept, marked broken and
    reported; a job that imports again is cleared. Only Python jobs are read:
    a store of a million command jobs must not be parsed before the first tick."""
    for job in service.store.list_jobs(kind="python"):
        reason = service.broken_reason(job.spec)
        if reason == job.broken:
            continue
        if reason is None and job.broken and not job.broken.startswith(CANNOT_IMPORT):
            continue  # broken for another reason, which this check cannot clear
        service.store.set_broken(job.id, reason)
        if reason:
            log.error("job %s is broken: %s", job.id, reason)


def build_engine(store: Store, options: NodeOptions) -> Engine:
    return Engine(
        store,
        EngineSettings(
            node_id=options.node_id,
            max_concurrent_runs=options.max_concurrent_runs,
            lease=options.lease,
            lookahead=options.lookahead,
            shutdown_grace=options.shutdown_grace,
            artifacts_dir=options.artifacts_dir,
        ),
    )


def watch_children_with_pidfds() -> None:
    """Learn that a command's process ended from a pidfd on the event loop,
    not from a thread started per process blocked in waitpid() (Python 3.11's
    default; 3.12 already does this where the kernel has pidfds, Linux 5.3+).
    Called on the running loop, by a process that is the node's alone: the
    watcher is process-wide."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel or sandbox without pidfds
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)


def settle_memory() -> None:
    """Leave what start-up built (modules, the app, templates, parsed jobs:
    hundreds of thousands of objects that live as long as the process) out of
    the garbage collector's full passes, which otherwise walk all of it and
    pause every request for tens of milliseconds (bench/api.py: the
    dashboard's p99 at 50 clients, 95 ms -> 50 ms). Memory is still freed
    by reference counting; only cycles among these objects would be kept, so
    it is for a process that is the node's alone, never one that embeds it."""
    gc.collect()
    gc.freeze()


async def serve(
    options: NodeOptions,
    file_jobs: FileJobs | None = None,
    *,
    extra: Callable[[Service, Loop], Coroutine[Any, Any, None]] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Run a node until SIGTERM/SIGINT (or until `stop` is set). `extra` runs
    beside the loop (the HTTP server) and is cancelled at shutdown. A signal
    during start-up (upgrading the store, applying the config) lets start-up
    finish, then stops as cleanly as later; a second one ends the process at
    once (start-up may be waiting for a database that does not answer)."""
    stop = stop or asyncio.Event()
    loop: Loop | None = None

    def interrupt(signum: int) -> None:
        if loop is not None:
            loop.interrupt_now()
            return
        # Nothing is claimed or running yet: end now, as the signal would have.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    if handle_signals:
        _install_signals(stop, interrupt)
    try:
        store = await asyncio.to_thread(open_store, options.database)
    except OPEN_ERRORS as exc:
        raise StoreUnavailable(str(exc)) from exc
    service = Service(store, default_tz=options.timezone, defaults=options.defaults)
    await asyncio.to_thread(apply_file, service, file_jobs)
    await asyncio.to_thread(mark_broken_jobs, service)
    engine = build_engine(store, options)
    if options.own_process:
        watch_children_with_pidfds()
        settle_memory()
    loop = Loop(
        engine,
        LoopSettings(retention_runs=options.retention_runs, retention_days=options.retention_days),
    )
    if stop.is_set():  # told to stop while starting: nothing was claimed yet
        store.close()
        log.info("stopped")
        return
    log.info("node %s serving %s", options.node_id, _safe_url(store.url))
    runner = asyncio.create_task(loop.run(), name="loop")
    side: asyncio.Task[None] | None = None
    if extra is not None:
        side = asyncio.create_task(extra(service, loop), name="http")
    stopper = asyncio.create_task(stop.wait(), name="stop")
    try:
        waiting = [t for t in (runner, side, stopper) if t is not None]
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper:
                task.result()  # a crashed loop or server stops the node, loudly
    finally:
        loop.stop()
        log.info("shutting down: waiting up to %ss for running runs", options.shutdown_grace)
        await loop.drain(options.shutdown_grace)
        others: list[asyncio.Task[Any]] = [t for t in (runner, side, stopper) if t is not None]
        for other in others:
            other.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await other
        store.close()
        log.info("stopped")


def _install_signals(stop: asyncio.Event, interrupt: Callable[[int], None]) -> None:
    aloop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: interrupting running runs now", signal.Signals(signum).name)
            interrupt(signum)
            return
        log.info("%s received: draining", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        aloop.add_signal_handler(signum, on_signal, signum)


def _safe_url(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
