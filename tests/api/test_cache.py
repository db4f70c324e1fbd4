"""Hot reads answered from memory: never older than the store, one builder per key."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from clocktower.api.cache import StampedCache
from clocktower.api.context import CACHE_LAG
from clocktower.api.tokens import create_token, list_tokens
from clocktower.model import TriggerKind
from clocktower.service import Service
from clocktower.store import NewRun, NodeInfo, Store
from clocktower.store.schema import runs
from tests.api.helpers import app_for, client_for
from tests.conftest import FakeClock


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'cache.db'}")
    store.upgrade()
    yield store
    store.close()


class Ticker:
    """The caches' clock, as the test moves it (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def api_for_sqlite(
    sqlite_store: Store, ticker: Ticker
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    service = Service(sqlite_store)
    service.create_job({"command": "x", "cron": "0 3 * * *"}, job_id="nightly", actor="t")
    app = app_for(service, cache_clock=ticker)
    async with client_for(app) as api:
        yield app, api


async def test_a_change_made_elsewhere_shows_within_the_lag_one_made_here_at_once(
    sqlite_store: Store, api_for_sqlite: tuple[FastAPI, httpx.AsyncClient], ticker: Ticker
) -> None:
    app, api = api_for_sqlite
    cache = app.state.ctx.bodies
    first = (await api.get("/api/v1/jobs")).json()
    assert [j["paused"] for j in first["jobs"]] == [False]
    again = (await api.get("/api/v1/jobs")).json()
    assert again == first and cache.hits == 1

    # Another process changes the database behind the server's back: the
    # answer may lag it by up to a second, never more.
    path = sqlite_store.db.sqlite_path or ""
    with sqlite3.connect(path) as other:
        other.execute("UPDATE jobs SET paused = 1")
    ticker.now += CACHE_LAG / 2
    assert (await api.get("/api/v1/jobs")).json() == first
    ticker.now += CACHE_LAG / 2
    changed = (await api.get("/api/v1/jobs")).json()
    assert [j["paused"] for j in changed["jobs"]] == [True]

    # A change through this server's own service shows in the next answer.
    app.state.ctx.service.resume("nightly", actor="t")
    resumed = (await api.get("/api/v1/jobs")).json()
    assert [j["paused"] for j in resumed["jobs"]] == [False]


async def test_without_a_lag_an_answer_is_never_older_than_the_store(
    sqlite_store: Store,
) -> None:
    app = app_for(Service(sqlite_store), cache_lag=0)
    Service(sqlite_store).create_job({"command": "x"}, job_id="nightly", actor="t")
    async with client_for(app) as api:
        await api.get("/api/v1/jobs")
        with sqlite3.connect(sqlite_store.db.sqlite_path or "") as other:
            other.execute("UPDATE jobs SET paused = 1")
        changed = (await api.get("/api/v1/jobs")).json()
    assert [j["paused"] for j in changed["jobs"]] == [True]


def node(name: str, at: datetime) -> NodeInfo:
    return NodeInfo(name, "host", 1, "0", started_at=at, heartbeat_at=at, stopped_at=None)


async def test_the_nodes_own_heartbeat_keeps_cached_answers_but_a_change_does_not(
    sqlite_store: Store, api_for_sqlite: tuple[FastAPI, httpx.AsyncClient], ticker: Ticker
) -> None:
    app, api = api_for_sqlite
    cache = app.state.ctx.bodies
    await api.get("/api/v1/jobs")
    now = datetime.now(UTC)
    for beat in range(3):  # the loop's heartbeat, every few seconds
        sqlite_store.heartbeat(node("here", now + timedelta(seconds=beat)))
        await api.get("/api/v1/jobs")
    assert cache.hits == 3 and cache.misses == 1
    assert [n.heartbeat_at for n in sqlite_store.list_nodes()] == [now + timedelta(seconds=2)]

    app.state.ctx.service.pause("nightly", actor="t")  # through the same store
    paused = (await api.get("/api/v1/jobs")).json()
    assert [j["paused"] for j in paused["jobs"]] == [True]
    assert cache.misses == 2

    other = Store(sqlite_store.url)  # another node on the same file
    try:
        other.heartbeat(node("there", now))
    finally:
        other.close()
    ticker.now += CACHE_LAG
    await api.get("/api/v1/jobs")
    assert cache.misses == 3  # its commits are any other connection's


async def test_nothing_is_cached_when_the_store_cannot_tell_changes(
    store: Store, api: httpx.AsyncClient, app: FastAPI
) -> None:
    await api.get("/api/v1/jobs")
    await api.get("/api/v1/jobs")
    stamp = store.change_stamp()
    if store.db.dialect == "postgresql":
        assert stamp is None and app.state.ctx.bodies.hits == 0
    else:
        assert isinstance(stamp, int) and app.state.ctx.bodies.hits == 1


async def test_the_cache_can_be_switched_off(sqlite_store: Store) -> None:
    app = app_for(Service(sqlite_store), cache=False)
    async with client_for(app) as api:
        for _ in range(3):
            assert (await api.get("/api/v1/jobs")).status_code == 200
    assert app.state.ctx.bodies.hits == 0


def test_one_caller_builds_a_missing_value_while_the_others_wait(sqlite_store: Store) -> None:
    cache: StampedCache[int] = StampedCache(sqlite_store)
    release = threading.Event()
    builds = []

    def build() -> int:
        builds.append(1)
        release.wait(10)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_build("k", build)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == [42] * 5
    assert len(builds) == 1


def test_a_commit_makes_entries_stale(sqlite_store: Store) -> None:
    cache: StampedCache[str] = StampedCache(sqlite_store)
    assert cache.get_or_build("k", lambda: "old") == "old"
    assert cache.peek("k") == ("old",)
    Service(sqlite_store).create_job({"command": "x"}, job_id="new", actor="t")
    assert cache.peek("k") is None
    assert cache.get_or_build("k", lambda: "new") == "new"


def test_the_stamp_watcher_closes_with_the_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'closing.db'}")
    store.upgrade()
    assert store.change_stamp() is not None
    store.close()
    assert store.change_stamp() is None


T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def test_a_jobs_runs_stamp_moves_with_its_runs_only(sqlite_store: Store) -> None:
    service = Service(sqlite_store)
    for job_id in ("a", "b"):
        service.create_job({"command": "x"}, job_id=job_id, actor="t")

    def stamp(job_id: str) -> int:
        return sqlite_store.runs_stamps([job_id])[job_id]

    assert stamp("a") == 0
    (run,) = sqlite_store.create_runs(
        [NewRun(job_id="a", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    after_insert = stamp("a")
    assert after_insert > 0 and stamp("b") == 0
    sqlite_store.claim(node="n", horizon=T0, limit=1, lease_until=T0 + timedelta(seconds=30))
    claimed = stamp("a")
    assert claimed > after_insert
    # Renewing a lease changes nothing a reader sees: the stamp stays.
    assert sqlite_store.renew(node="n", run_ids=[run.id], lease_until=T0 + timedelta(minutes=5))
    assert stamp("a") == claimed
    sqlite_store.create_runs(
        [NewRun(job_id="b", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    assert stamp("a") == claimed
    with sqlite3.connect(sqlite_store.db.sqlite_path or "") as other:  # another process
        other.execute("DELETE FROM runs WHERE job_id = 'a'")
    assert stamp("a") > claimed


def test_every_column_a_reader_sees_moves_the_stamp(sqlite_store: Store) -> None:
    """The update trigger names its columns: one added to `runs` later must be
    added to it (lease_until alone is left out on purpose)."""
    with sqlite3.connect(sqlite_store.db.sqlite_path or "") as conn:
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'runs_stamp_update'"
        ).fetchone()
    named = sql.split(" OF ", 1)[1].split(" ON runs", 1)[0]
    watched = {name.strip() for name in named.split(",")}
    assert watched == {c.name for c in runs.columns} - {"id", "lease_until"}


async def test_a_jobs_cached_runs_outlive_changes_to_other_jobs(
    sqlite_store: Store, api_for_sqlite: tuple[FastAPI, httpx.AsyncClient], ticker: Ticker
) -> None:
    app, api = api_for_sqlite
    cache = app.state.ctx.bodies
    Service(sqlite_store).create_job({"command": "x"}, job_id="other", actor="t")
    sqlite_store.create_runs(
        [NewRun(job_id="nightly", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    first = (await api.get("/api/v1/runs", params={"job": "nightly"})).json()
    assert [r["state"] for r in first["runs"]] == ["scheduled"]
    path = sqlite_store.db.sqlite_path or ""

    # Another process adds a run of another job: past the lag, the answer is
    # still kept, on the word of this job's own stamp.
    sqlite_store.create_runs(
        [NewRun(job_id="other", scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
    )
    ticker.now += CACHE_LAG
    misses = cache.misses
    assert (await api.get("/api/v1/runs", params={"job": "nightly"})).json() == first
    assert cache.misses == misses

    # Another process changes one of this job's runs: the answer shows it
    # once the lag has passed.
    with sqlite3.connect(path) as other:
        other.execute("UPDATE runs SET state = 'cancelled' WHERE job_id = 'nightly'")
    ticker.now += CACHE_LAG
    changed = (await api.get("/api/v1/runs", params={"job": "nightly"})).json()
    assert [r["state"] for r in changed["runs"]] == ["cancelled"]
    assert cache.misses == misses + 1


def test_a_late_value_is_rebuilt_by_one_caller_while_the_others_get_it(
    sqlite_store: Store, ticker: Ticker
) -> None:
    cache: StampedCache[str] = StampedCache(sqlite_store, lag=1.0, clock=ticker)
    assert cache.get_or_build("k", lambda: "old") == "old"
    Service(sqlite_store).create_job({"command": "x"}, job_id="new", actor="t")
    ticker.now += 1.5  # late: past the lag, within two
    assert cache.peek("k") is None  # the first to find it late sets out to rebuild it
    building, release = threading.Event(), threading.Event()

    def slow() -> str:
        building.set()
        release.wait(10)
        return "new"

    builder = threading.Thread(target=lambda: cache.get_or_build("k", slow))
    builder.start()
    assert building.wait(10)
    assert cache.peek("k") == ("old",)  # the others are answered meanwhile
    assert cache.get_or_build("k", lambda: "not this") == "old"  # and do not wait for it
    release.set()
    builder.join(10)
    assert cache.peek("k") == ("new",)

    Service(sqlite_store).create_job({"command": "x"}, job_id="newer", actor="t")
    ticker.now += 2.5  # long past the lag: rebuilt before it is answered
    assert cache.get_or_build("k", lambda: "newest") == "newest"


async def test_a_tokens_use_is_noted_once_a_minute_not_on_every_request(
    sqlite_store: Store, ticker: Ticker
) -> None:
    clock = FakeClock()
    app = app_for(Service(sqlite_store, clock=clock), cache_clock=ticker)
    secret = create_token(sqlite_store, "bot", "read").secret
    path = sqlite_store.db.sqlite_path or ""
    with sqlite3.connect(path) as watcher:

        def commits() -> int:
            return int(watcher.execute("PRAGMA data_version").fetchone()[0])

        async with client_for(app) as api:
            headers = {"Authorization": f"Bearer {secret}"}
            await api.get("/api/v1/jobs", headers=headers)  # notes the first use
            before = commits()
            for _ in range(5):  # the cached lookup still says "never used"
                assert (await api.get("/api/v1/jobs", headers=headers)).status_code == 200
            assert commits() == before
            clock.advance(61)
            await api.get("/api/v1/jobs", headers=headers)
            assert commits() != before
    (token,) = list_tokens(sqlite_store)
    assert token.last_used_at == clock.now


def test_answers_about_one_jobs_runs_are_confirmed_together_while_its_runs_are_unchanged(
    sqlite_store: Store, ticker: Ticker
) -> None:
    service = Service(sqlite_store)
    for job_id in ("a", "b"):
        service.create_job({"command": "x"}, job_id=job_id, actor="t")
    cache: StampedCache[str] = StampedCache(
        sqlite_store, lag=1.0, clock=ticker, scope_stamps=sqlite_store.runs_stamps
    )
    for job_id in ("a", "b"):
        assert cache.get_or_build(job_id, lambda j=job_id: f"runs of {j}", scope=job_id)
    assert cache.confirm_scoped() == 0  # nothing changed: nothing to confirm

    def new_run(job_id: str) -> None:
        sqlite_store.create_runs(
            [NewRun(job_id=job_id, scheduled_for=T0, trigger=TriggerKind.MANUAL)], now=T0
        )

    new_run("b")  # the store changed; job a's runs did not
    ticker.now += 0.5
    assert cache.confirm_scoped() == 1
    ticker.now += 0.9  # past the lag since built, not since confirmed
    assert cache.peek("a") == ("runs of a",)
    assert cache.peek("b") is None  # late: this caller rebuilds it
    assert cache.get_or_build("b", lambda: "new runs of b", scope="b") == "new runs of b"
