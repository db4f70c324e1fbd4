"""The only part of Clocktower that speaks SQL.

`Store(url)` works the same on SQLite (`sqlite:///clocktower.db`) and PostgreSQL
(`postgresql+psycopg://user@host/db`); see `db.Capabilities` for where the two
differ. All methods are synchronous and short; the engine calls them from a
worker thread so the event loop never waits on the database.
"""

from __future__ import annotations

from clocktower.store.admin import AdminQueries, Event, NodeInfo, TokenInfo
from clocktower.store.db import Database
from clocktower.store.jobs import JobQueries
from clocktower.store.migrate import needs_upgrade, upgrade
from clocktower.store.output import OutputQueries
from clocktower.store.rows import Decision, FirePlan, NewRun, OutputChunk
from clocktower.store.runs import RunQueries
from clocktower.store.views import ViewQueries
from clocktower.store.writes import RunResult, Started, WriteQueries


class Store(JobQueries, RunQueries, WriteQueries, OutputQueries, AdminQueries, ViewQueries):
    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.db = Database(url, pool_size=pool_size)

    @property
    def url(self) -> str:
        return self.db.url

    def upgrade(self) -> None:
        upgrade(self.db)

    def needs_upgrade(self) -> bool:
        return needs_upgrade(self.db)

    def close(self) -> None:
        self.db.dispose()


__all__ = [
    "Decision",
    "Event",
    "FirePlan",
    "NewRun",
    "NodeInfo",
    "OutputChunk",
    "RunResult",
    "Started",
    "Store",
    "TokenInfo",
]
