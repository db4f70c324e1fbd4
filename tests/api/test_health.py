"""/healthz, /readyz (a database taken away for real, a loop that stops
ticking) and /metrics."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
from fastapi import FastAPI

from clocktower.engine import Engine, EngineSettings, Loop
from clocktower.engine.policies import decide_start
from clocktower.model import RunState, TriggerKind
from clocktower.service import Service
from clocktower.store import NewRun, RunResult, Store
from tests.api.helpers import app_for, client_for, finished_run, running_run
from tests.conftest import FakeClock


async def test_healthz(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_reports_the_store(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["reason"] is None
    assert body["store"]["status"] == "ok"
    assert body["store"]["latency_ms"] >= 0
    assert body["checked_at"] == "2025-01-06T12:00:00Z"


@contextmanager
def database_taken_away(store: Store) -> Iterator[None]:
    """Make the store's database unreachable for real, then bring it back."""
    if store.db.dialect == "sqlite":
        path = store.db.sqlite_path or ""
        os.rename(path, f"{path}.away")
        try:
            yield
        finally:
            os.replace(f"{path}.away", path)
        return
    schema = store.db.engine.url.query["options"].rpartition("=")[2]
    dsn = store.db.engine.url.set(drivername="postgresql", query={})
    url = dsn.render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER SCHEMA {schema} RENAME TO {schema}_away")
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA {schema}_away RENAME TO {schema}")


async def test_readyz_is_503_while_the_database_is_away(store: Store, app: FastAPI) -> None:
    async with client_for(app) as api:
        assert (await api.get("/readyz")).status_code == 200
        with database_taken_away(store):
            away = await api.get("/readyz")
            assert away.status_code == 503
            body = away.json()
            assert body["status"] == "unavailable"
            assert body["store"]["status"] == "unreachable"
            assert body["reason"].startswith("store unreachable:")
            metrics = await api.get("/metrics")
            # Either the scrape still answers and reports the store down, or (when
            # the caller cannot be checked without the store) Prometheus sees the
            # target down: never a 200 that claims the store is up.
            if metrics.status_code == 200:
                assert "clocktower_store_up 0.0" in metrics.text
            else:
                assert metrics.status_code == 503
                assert metrics.json()["error"]["code"] == "store_unavailable"
        back = await api.get("/readyz")
        assert (back.status_code, back.json()["status"]) == (200, "ready")


async def test_readyz_is_503_when_the_loop_stops_ticking(
    service: Service, store: Store, clock: FakeClock
) -> None:
    engine = Engine(store, EngineSettings(node_id="node-a"), clock=clock)
    loop = Loop(engine)
    async with client_for(app_for(service, loop=loop)) as api:
        fresh = (await api.get("/readyz")).json()
        assert (fresh["status"], fresh["node"], fresh["last_tick"]) == ("ready", "node-a", None)
        clock.advance(2 * loop.settings.idle_cap + 31)
        stalled = await api.get("/readyz")
        assert stalled.status_code == 503
        assert "has not ticked since it started" in stalled.json()["reason"]
        await loop.tick()
        ticking = await api.get("/readyz")
        assert ticking.status_code == 200
        assert ticking.json()["last_tick"] == "2025-01-06T12:01:31Z"
        assert ticking.json()["ticks"] == 1
        clock.advance(2 * loop.settings.idle_cap + 31)
        assert "has not ticked for 91s" in (await api.get("/readyz")).json()["reason"]
        loop.stop()
        assert "shutting down" in (await api.get("/readyz")).json()["reason"]


def parse(text: str) -> dict[str, float]:
    """Samples of the exposition text, by name and labels."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_metrics_count_runs_that_finished_since_the_last_scrape(
    api: httpx.AsyncClient, service: Service, clock: FakeClock
) -> None:
    service.create_job({"command": "x", "cron": "0 3 * * *"}, job_id="nightly", actor="t")
    service.create_job({"command": "x", "every": "1h"}, job_id="hourly", actor="t")
    clock.advance(1)
    finished_run(service, "nightly", RunState.SUCCEEDED, took=2)
    finished_run(service, "nightly", RunState.FAILED, took=40)
    running_run(service, "hourly")
    service.store.create_runs(
        [
            NewRun(
                job_id="hourly",
                scheduled_for=clock.now,
                trigger=TriggerKind.SCHEDULE,
                state=RunState.MISSED,
                missed_count=3,
                finished_at=clock.now,
            ),
            NewRun(
                job_id="hourly",
                scheduled_for=clock.now,
                trigger=TriggerKind.MANUAL,
                state=RunState.SKIPPED,
                finished_at=clock.now,
            ),
        ],
        now=clock.now,
    )
    clock.advance(60)
    samples = parse((await api.get("/metrics")).text)
    assert samples['clocktower_runs_total{job="nightly",state="succeeded"}'] == 1
    assert samples['clocktower_runs_total{job="nightly",state="failed"}'] == 1
    assert samples['clocktower_missed_fire_times_total{job="hourly"}'] == 3
    assert samples['clocktower_skipped_runs_total{job="hourly"}'] == 1
    assert samples["clocktower_run_duration_seconds_count"] == 2
    assert samples["clocktower_run_duration_seconds_sum"] == 42
    assert samples['clocktower_run_duration_seconds_bucket{le="5.0"}'] == 1
    assert samples['clocktower_runs_in_progress{job="hourly",state="running"}'] == 1
    next_fire = samples['clocktower_job_next_fire_timestamp_seconds{job="nightly"}']
    assert next_fire == 1736218800  # 2025-01-07T03:00:00Z
    assert samples["clocktower_store_up"] == 1
    assert samples["clocktower_store_latency_seconds"] >= 0

    again = parse((await api.get("/metrics")).text)  # each run counted once
    assert again['clocktower_runs_total{job="nightly",state="succeeded"}'] == 1
    assert again["clocktower_run_duration_seconds_count"] == 2


async def test_metrics_measure_lateness_of_scheduled_runs(
    api: httpx.AsyncClient, service: Service, store: Store, clock: FakeClock
) -> None:
    service.create_job({"command": "x", "every": "1h"}, job_id="hourly", actor="t")
    clock.advance(1)
    fire = clock.now
    store.create_runs(
        [NewRun("hourly", scheduled_for=fire, trigger=TriggerKind.SCHEDULE, fire_key="schedule")],
        now=fire,
    )
    clock.advance(0.2)  # started 200 ms late
    lease = clock.now.replace(year=2026)
    (claimed,) = store.claim(node="n", horizon=clock.now, limit=1, lease_until=lease)
    store.start(claimed.id, node="n", now=clock.now, lease_until=lease, decide=decide_start)
    store.finish(claimed.id, node="n", outcome=RunResult(RunState.SUCCEEDED), now=clock.now)
    clock.advance(60)
    samples = parse((await api.get("/metrics")).text)
    assert samples["clocktower_fire_lateness_seconds_count"] == 1
    assert samples['clocktower_fire_lateness_seconds_bucket{le="0.1"}'] == 0
    assert samples['clocktower_fire_lateness_seconds_bucket{le="0.25"}'] == 1


async def test_metrics_report_the_loop(service: Service, store: Store, clock: FakeClock) -> None:
    loop = Loop(Engine(store, EngineSettings(node_id="node-a"), clock=clock))
    async with client_for(app_for(service, loop=loop)) as api:
        clock.advance(12)
        samples = parse((await api.get("/metrics")).text)
    assert samples["clocktower_loop_tick_age_seconds"] == 12
    assert samples["clocktower_loop_ticks"] == 0
    assert samples["clocktower_node_runs_executing"] == 0
    assert 'clocktower_info{node="node-a",version="0.1.0"}' in samples
