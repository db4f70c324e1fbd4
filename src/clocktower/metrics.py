"""Prometheus metrics, computed from the store when scraped.

The engine is not instrumented: the store already records every run, so a
scrape reads what changed since the last one. Runs that finished since the
previous scrape (by `finished_at`) feed the counters and histograms, each run
once; gauges (runs in progress, next fire times, loop tick age, store latency)
are read fresh.

The store is shared, so every node reports the whole cluster's runs. Scrape
one node, or aggregate with `max` rather than `sum` (`max by (job, state)
(rate(clocktower_runs_total[5m]))`). Counters start at zero when the process
starts, as Prometheus expects of counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clocktower import __version__
from clocktower.engine import Loop
from clocktower.model import RunState
from clocktower.store import Store
from clocktower.store.views import FinishedRun

log = logging.getLogger("clocktower.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800)
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
EXECUTED = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.TIMED_OUT, RunState.CANCELLED, RunState.LOST}
)


class StoreMetrics:
    """The metrics of one store, as seen from one process."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        loop: Loop | None = None,
        settle: float = 2.0,
        batch: int = 10_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.loop = loop
        self.settle = timedelta(seconds=settle)  # runs committed late are still read
        self.batch = batch
        self.cursor: tuple[datetime, int] = (clock(), 0)
        self.latency: float | None = None
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters()
        self.registry.register(LiveCollector(self))

    def _counters(self) -> None:
        reg = self.registry
        self.runs = Counter(
            "clocktower_runs",
            "Runs that ended, by job and final state",
            ["job", "state"],
            registry=reg,
        )
        self.missed = Counter(
            "clocktower_missed_fire_times", "Fire times that passed unrun", ["job"], registry=reg
        )
        self.skipped = Counter(
            "clocktower_skipped_runs",
            "Fire times a policy chose not to run",
            ["job"],
            registry=reg,
        )
        self.duration = Histogram(
            "clocktower_run_duration_seconds",
            "How long runs took, start to end",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.lateness = Histogram(
            "clocktower_fire_lateness_seconds",
            "Start of a scheduled run after its fire time (plus the job's jitter)",
            buckets=LATENESS_BUCKETS,
            registry=reg,
        )

    def render(self) -> bytes:
        """The exposition text; never raises because the store is down."""
        self.latency = self.measure_latency()
        if self.latency is not None:
            try:
                self.read_finished()
            except Exception as exc:
                log.warning("metrics: cannot read finished runs: %s", exc)
        return generate_latest(self.registry)

    def measure_latency(self) -> float | None:
        """How long a query on the store takes; None when it fails."""
        start = time.perf_counter()
        try:
            self.store.probe()
        except Exception as exc:
            log.warning("metrics: store unreachable: %s", exc)
            return None
        return time.perf_counter() - start

    def read_finished(self) -> int:
        """Count the runs that finished since the last read. Returns how many."""
        with self._lock:
            until = self.clock() - self.settle
            seen = 0
            while True:
                batch = self.store.finished_since(self.cursor, until=until, limit=self.batch)
                for outcome in batch:
                    self.observe(outcome)
                seen += len(batch)
                if batch:
                    last = batch[-1]
                    self.cursor = (last.finished_at or until, last.id)
                if len(batch) < self.batch:
                    return seen

    def observe(self, run: FinishedRun) -> None:
        state = str(run.state)
        self.runs.labels(run.job_id, state).inc()
        if run.state is RunState.MISSED:
            self.missed.labels(run.job_id).inc(run.missed_count or 1)
        elif run.state is RunState.SKIPPED:
            self.skipped.labels(run.job_id).inc()
        if run.state in EXECUTED and run.duration is not None:
            self.duration.observe(max(run.duration, 0.0))
        if run.trigger == "schedule" and run.started_at is not None:
            self.lateness.observe(max((run.started_at - run.due_at).total_seconds(), 0.0))


class LiveCollector(Collector):
    """The gauges, read from the store (and the loop) at each scrape."""

    def __init__(self, metrics: StoreMetrics) -> None:
        self.m = metrics

    def describe(self) -> Iterable[Metric]:
        return []  # dynamic: nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("clocktower_info", "This process", labels=["version", "node"])
        node = self.m.loop.engine.node if self.m.loop is not None else ""
        info.add_metric([__version__, node], 1)
        yield info
        yield from self._loop()
        latency = self.m.latency
        up = GaugeMetricFamily("clocktower_store_up", "1 when the store answers")
        up.add_metric([], 0 if latency is None else 1)
        yield up
        if latency is None:
            return
        yield _gauge("clocktower_store_latency_seconds", "Time a store query took", latency)
        try:
            yield from self._from_store()
        except Exception as exc:
            log.warning("metrics: cannot read the store: %s", exc)

    def _loop(self) -> Iterable[Metric]:
        loop = self.m.loop
        if loop is None:
            return
        last = loop.last_tick or loop.started_at
        age = (self.m.clock() - last).total_seconds()
        yield _gauge("clocktower_loop_tick_age_seconds", "Time since the loop last ticked", age)
        yield _gauge("clocktower_loop_ticks", "Ticks of the loop since start", float(loop.ticks))
        running = float(len(loop.engine.executions))
        yield _gauge("clocktower_node_runs_executing", "Runs this node executes now", running)

    def _from_store(self) -> Iterable[Metric]:
        active = GaugeMetricFamily(
            "clocktower_runs_in_progress", "Pending and running runs", labels=["job", "state"]
        )
        for job_id, state, count in self.m.store.active_counts():
            active.add_metric([job_id, state], count)
        yield active
        fires = GaugeMetricFamily(
            "clocktower_job_next_fire_timestamp_seconds",
            "When each job next fires (Unix time)",
            labels=["job"],
        )
        for job_id, at in self.m.store.next_fires():
            fires.add_metric([job_id], at.timestamp())
        yield fires


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, text)
    gauge.add_metric([], value)
    return gauge


__all__ = ["CONTENT_TYPE", "StoreMetrics"]
