"""The tables, in SQLAlchemy Core. Migrations in `migrations/` must produce exactly this.

Every instant is stored in UTC. On PostgreSQL that is `timestamptz`; SQLite has
no date type, so `UTCDateTime` stores a naive UTC text that sorts correctly and
hands back aware datetimes either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

# SQLite only gives an INTEGER PRIMARY KEY autoincrement semantics; PostgreSQL gets bigint.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases; naive input is refused.

    On SQLite the value is text in SQLAlchemy's format (`2024-03-10
    03:00:00.000000`, which sorts as time does). Converting it is done here
    with `datetime.fromisoformat` instead of SQLAlchemy's regular expression:
    a page of 50 runs has 350 datetimes, and parsing them cost more than
    reading the rows."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _in_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            # `2024-03-10 03:00:00.000000+00:00` without its offset.
            return _in_utc(value).isoformat(" ", "microseconds")[:-6]

        return to_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            # Parsing the offset costs a tenth of what `.replace(tzinfo=UTC)` does.
            return datetime.fromisoformat(value + "+00:00")

        return from_text


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
    return value.astimezone(UTC)


naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming)

HAS_AFTER = "\"after\" != ''"  # jobs.after is ",a,b," or empty

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),  # clocktower.spec.job_to_mapping, versioned
    Column("kind", String(16), nullable=False),  # target kind, for filters
    Column("tags", Text, nullable=False, server_default=""),  # ",a,b," for LIKE filters
    Column("after", Text, nullable=False, server_default=""),  # ",job-a,job-b," upstream jobs
    Column("source", String(512), nullable=False, server_default="api"),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("paused_at", UTCDateTime),
    Column("broken", Text),  # why the stored definition cannot run
    Column("deleted_at", UTCDateTime),  # deleted jobs keep their history until pruned
    Column("next_fire_at", UTCDateTime),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "next_fire_at"),
    # Only the jobs that wait for others: finding the dependents of a job that
    # just succeeded reads these, not every job.
    Index(None, "after", sqlite_where=text(HAS_AFTER), postgresql_where=text(HAS_AFTER)),
)

runs = Table(
    "runs",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("job_id", String(128), ForeignKey("jobs.id"), nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=False),  # the fire time served
    Column("due_at", UTCDateTime, nullable=False),  # may start from (jitter, backoff)
    # "schedule" for the run of a fire time, "missed" for a missed record, NULL
    # otherwise: with the unique key below a fire time can never produce two runs.
    Column("fire_key", String(16)),
    Column("trigger", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("retry_of", RowId, ForeignKey("runs.id")),
    Column("state", String(16), nullable=False),
    Column("queued", Boolean, nullable=False, server_default=text("false")),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("node", String(255)),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("exit_code", Integer),
    Column("http_status", Integer),
    Column("error", Text),
    Column("progress_done", Float),
    Column("progress_total", Float),
    Column("payload", JSON),
    Column("env", JSON),
    Column("result", JSON),
    Column("missed_count", Integer),
    Column("missed_until", UTCDateTime),
    Column("output_bytes", BigInteger, nullable=False, server_default="0"),
    Column("output_dropped", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("job_id", "scheduled_for", "fire_key"),
    Index(None, "state", "due_at"),
    Index(None, "job_id", "state"),
    Index(None, "job_id", "id"),
    Index(None, "finished_at"),
)

# The claim step's order (see store.writes): the highest priority, then the
# earliest due, is read first, so a claim stops after its LIMIT however many
# runs wait for a slot.
Index("ix_runs_claim", runs.c.state, runs.c.priority.desc(), runs.c.due_at, runs.c.id)

# How often each job's runs changed, kept on SQLite by triggers (migration
# 0003) for every insert, delete and update of a run except a lease renewal:
# a cached answer about one job's runs (`clocktower.api.cache`) stays valid
# while its job's stamp has not moved, whatever else was committed. Rows are
# never deleted, so a stamp never goes back. Unused on PostgreSQL, which
# caches nothing.
run_stamps = Table(
    "run_stamps",
    metadata,
    Column("job_id", String(128), primary_key=True),
    Column("stamp", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

run_output = Table(
    "run_output",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", RowId, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("part", String(4), nullable=False),  # "head" or "tail" (see store.output)
    Column("nbytes", Integer, nullable=False),
    Column("lines", JSON, nullable=False),  # [[epoch seconds, stream, text], ...]
    Index(None, "run_id", "id"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", RowId, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(512), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("run_id", "name"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
)

events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("job_id", String(128)),
    Column("run_id", RowId),
    Column("detail", JSON),
    Index(None, "job_id", "id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("hash", String(128), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
