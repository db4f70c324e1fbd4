"""Connections, transactions and the differences between SQLite and PostgreSQL.

Dialect differences are decided here, once, as capability flags; the queries in
the rest of the store read the flags instead of testing the dialect name.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Executable, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool, StaticPool

from clocktower.model import InvalidSpec
from clocktower.store.rows import SpecCache

NOTIFY_CHANNEL = "clocktower"


@dataclass(frozen=True, slots=True)
class Capabilities:
    skip_locked: bool  # SELECT … FOR UPDATE SKIP LOCKED
    notify: bool  # LISTEN/NOTIFY wake-ups
    data_version: bool  # PRAGMA data_version change detection
    # The planner keeps no statistics (SQLite without ANALYZE): some queries
    # tell it which index to walk (see store.writes).
    needs_plan_hints: bool


def normalize_url(url: str) -> str:
    """Accept the common spellings of a PostgreSQL URL and use psycopg 3 for all."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """An SQLAlchemy engine plus the transaction styles the store needs."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(pool_size)
            self.caps = Capabilities(
                skip_locked=False, notify=False, data_version=True, needs_plan_hints=True
            )
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True
            )
            self.caps = Capabilities(
                skip_locked=True, notify=True, data_version=False, needs_plan_hints=False
            )
        else:
            raise InvalidSpec(
                f"unsupported database {parsed.drivername!r}: use sqlite:///PATH "
                "or postgresql+psycopg://USER@HOST/DB",
                field="database",
            )
        self.insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        # SQLite: one writing transaction at a time in this process (see `write`).
        self._writers: AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )
        self.specs = SpecCache()  # job definitions as parsed from this database's rows
        self._watcher: _ChangeWatcher | None = None
        self._watcher_lock = threading.Lock()
        self._closed = False

    @property
    def sqlite_path(self) -> str | None:
        if self.dialect != "sqlite":
            return None
        return make_url(self.url).database or None

    def _sqlite_engine(self, pool_size: int, *, single: bool = False) -> Engine:
        path = make_url(self.url).database
        if not path or path == ":memory:":
            raise InvalidSpec(
                "an in-memory SQLite database cannot be shared by the scheduler's "
                "connections; give a file path (sqlite:///clocktower.db)",
                field="database",
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled: opening a connection and setting its pragmas costs more than
        # most of the engine's transactions. An idle pooled connection holds no
        # WAL snapshot, since every transaction ends in COMMIT or ROLLBACK.
        # isolation_level=None hands transaction control to the events below,
        # so writers can take the lock up front with BEGIN IMMEDIATE; a
        # connection is used by one thread at a time, whichever checked it out.
        connect_args = {"timeout": 30, "isolation_level": None, "check_same_thread": False}
        if single:  # one connection for good (the change watcher's)
            engine = create_engine(self.url, poolclass=StaticPool, connect_args=connect_args)
        else:
            engine = create_engine(
                self.url,
                poolclass=QueuePool,
                pool_size=pool_size,
                max_overflow=10,
                connect_args=connect_args,
            )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it takes the write lock first
        (BEGIN IMMEDIATE), so two nodes never both read a due job and then race.

        SQLite has one writer at a time. Threads of this process queue for it
        here, in order, rather than in SQLite's busy handler, which sleeps
        (up to 100 ms a try) while the lock is taken and retaken by others.
        """
        with self._writers, self.engine.connect() as conn:
            conn = conn.execution_options(clocktower_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """A transaction the database aborted to let another one through
        (PostgreSQL: deadlock detected, serialization failure): run it again."""
        return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("40P01", "40001")

    def notify(self, conn: Connection) -> None:
        """Wake the other nodes' loops when this transaction commits."""
        if self.caps.notify:
            conn.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")

    def change_stamp(self) -> int | None:
        """On SQLite, `PRAGMA data_version` read on a connection of its own: any
        commit by any other connection of any process moves it. None elsewhere."""
        watcher = self._change_watcher()
        return watcher.stamp() if watcher is not None else None

    def write_unseen(self, statement: Executable) -> bool:
        """Write `statement` without moving this process's change stamp (False:
        this store has no stamp; write it as usual). Only for what no cached
        answer shows: the node's heartbeat, which would otherwise make every
        cached page stale every few seconds."""
        watcher = self._change_watcher()
        if watcher is None:
            return False
        with self._writers:
            watcher.write(statement)
        return True

    def _change_watcher(self) -> _ChangeWatcher | None:
        if self.dialect != "sqlite" or self._closed:
            return None
        with self._watcher_lock:
            if self._watcher is None:
                self._watcher = _ChangeWatcher(self._sqlite_engine(1, single=True))
            return self._watcher

    def dispose(self) -> None:
        self._closed = True
        with self._watcher_lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
        self.engine.dispose()


class _ChangeWatcher:
    """One SQLite connection, outside the store's pool, whose `data_version` is the
    store's change stamp. A connection's own commits do not move its
    `data_version`, which is what `write` relies on."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = engine.connect()
        self._lock = threading.Lock()

    def stamp(self) -> int | None:
        with self._lock:
            if self._conn is None:
                return None
            raw = self._conn.connection.dbapi_connection
            assert raw is not None
            return int(raw.execute("PRAGMA data_version").fetchone()[0])

    def write(self, statement: Executable) -> None:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the store is closed")
            conn = self._conn.execution_options(clocktower_write=True)  # BEGIN IMMEDIATE
            with conn.begin():
                conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._engine.dispose()


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("clocktower_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")
