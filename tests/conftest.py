"""Shared test settings and fixtures: stores on SQLite and PostgreSQL, a clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=300, deadline=None)
settings.register_profile(
    "ci", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class FakeClock:
    """The time as the test says it is."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 6, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def set(self, instant: datetime) -> datetime:
        self.now = instant
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def postgres_base_url() -> str | None:
    """The PostgreSQL server the tests use, or None (with the reason skipped)."""
    url = os.environ.get("CLOCKTOWER_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, connect_timeout=3):
            return url
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {url}: {exc}"
        if os.environ.get("CLOCKTOWER_REQUIRE_POSTGRES"):
            pytest.fail(f"{reason} (CLOCKTOWER_REQUIRE_POSTGRES is set)", pytrace=False)
        pytest.skip(reason)


def fresh_postgres_url() -> Iterator[str]:
    """A URL whose connections see a new, empty schema; dropped afterwards."""
    import psycopg

    base = postgres_base_url()
    assert base is not None
    schema = f"ct_{uuid.uuid4().hex[:12]}"
    dsn = base.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL schema, for tests that only make sense there."""
    yield from fresh_postgres_url()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for each backend, empty."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'clocktower.db'}"
    else:
        yield from fresh_postgres_url()


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    from clocktower.store import Store

    s = Store(store_url)
    s.upgrade()
    yield s
    pool = s.db.engine.pool
    leaked = pool.checkedout() if hasattr(pool, "checkedout") else 0
    s.close()
    assert leaked == 0, f"{leaked} connection(s) left checked out"
