"""Hot responses kept while the store has not changed, or has only just.

The busiest reads (the first page of jobs, a job's latest runs, the dashboard's
jobs table) are answered from memory when nothing was committed to the store
since they were built. The store's change stamp says so: on SQLite it is
`PRAGMA data_version`, which moves whenever any connection of any process
commits. Where the store cannot tell cheaply (PostgreSQL), nothing is cached.

A busy node commits every few milliseconds: each run that starts or ends is a
commit. Rebuilding every answer after each one would cost more than not
caching at all, so an answer may lag the store by up to `lag` (one second by
default), and is rebuilt at most once per lag, by one caller, while the
others are still answered from memory. What this process changed through
`Service` (a pause, a trigger, a new job) is never late: `Service.changes`
moved, so the next request rebuilds.

An answer about one job's runs also carries that job's own stamp
(`Store.runs_stamps`), and while the job's runs are unchanged the answer is
kept, whatever else was committed. A background task (`confirm_scoped`)
reads the stamps of all such answers in one query twice per lag, so they
stay fresh without requests waiting for the check. Without it, each second
of a busy node would rebuild every job's runs that anyone asks for.

With `lag = 0` an answer is never older than the data.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from clocktower.store import Store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    stamp: int  # the store's change stamp when built (or last found unchanged)
    scope: str | None  # what the value reads, when narrower than the store (a job's runs)
    part: int | None  # the scope's own stamp
    changes: int  # this process's changes through the service, when built
    built: float  # when built or last confirmed unchanged, by the cache's clock
    value: T


class StampedCache(Generic[T]):
    """A bounded LRU of values, each valid for the store stamp it was built
    at, or for `lag` seconds while this process changed nothing."""

    def __init__(
        self,
        store: Store,
        *,
        size: int = 1024,
        enabled: bool = True,
        lag: float = 0.0,
        changes: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
        scope_stamps: Callable[[Sequence[str]], dict[str, int]] | None = None,
    ) -> None:
        self.store = store
        self.size = size
        self.enabled = enabled
        self.lag = lag
        self.changes = changes
        self.clock = clock
        self.scope_stamps = scope_stamps
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self._claims: dict[Hashable, float] = {}  # key -> when a caller set out to rebuild it
        self.hits = 0
        self.misses = 0

    def stamp(self) -> int | None:
        return self.store.change_stamp() if self.enabled else None

    def peek(self, key: Hashable) -> tuple[T] | None:
        """The value for `key` if one is cached and fresh (as a 1-tuple: the
        value itself may be None), without building anything.

        A late value (the store changed, the lag has passed, less than two
        lags old) is refused to the first caller, who goes on to rebuild it,
        and given to the others meanwhile, so they need not queue for the
        builder."""
        stamp = self.stamp()
        found = self._fresh(key, stamp, self.lag)
        if found is not None or not self.lag:
            return found
        late = self._fresh(key, stamp, 2 * self.lag)
        if late is not None and self.claim(key):
            return None  # this caller rebuilds it
        return late

    def claim(self, key: Hashable) -> bool:
        """Whether the caller is the first to set out to rebuild `key` (since
        its last build, or for a lag, should that caller not come back)."""
        now = self.clock()
        with self._lock:
            claimed = self._claims.get(key)
            if claimed is not None and now - claimed < self.lag:
                return False
            self._claims[key] = now
            if len(self._claims) > 4 * self.size:
                self._claims.clear()
            return True

    def get_or_build(self, key: Hashable, build: Callable[[], T], *, scope: str | None = None) -> T:
        """The cached value for `key`, or `build()` (cached when the stamp allows).

        `scope`, when given, names all that `build` reads (a job's runs):
        its own stamp (`scope_stamps`) moves whenever that changes, so an
        entry whose scope stamp has not moved is still fresh after other
        changes to the store.

        One caller builds a missing or late value; the others asking for the
        same key meanwhile get the late value if it is less than two lags
        old, or wait for the new one, so a change does not make fifty
        requests render the same page at once. The clock, the stamps and the
        service's changes are read before building, so the entry counts as
        older than any change committed while it is built."""
        found = self._fresh(key, self.stamp(), self.lag)
        if found is not None:
            return found[0]
        builder = self._builder(key)
        if not builder.acquire(blocking=False):
            late = self._fresh(key, self.stamp(), 2 * self.lag)
            if late is not None:
                return late[0]
            builder.acquire()
        try:
            now, changes, stamp = self.clock(), self.changes(), self.stamp()
            found = self._fresh(key, stamp, self.lag)
            if found is not None:
                return found[0]
            part = None
            if scope is not None and stamp is not None and self.scope_stamps is not None:
                part = self.scope_stamps([scope])[scope]
                kept = self._same_scope(key, _Entry(stamp, scope, part, changes, now, None))
                if kept is not None:
                    return kept[0]
            value = build()
            self.misses += 1
            if stamp is not None:
                self._put(key, _Entry(stamp, scope, part, changes, now, value))
            return value
        finally:
            builder.release()

    def refresh(self, key: Hashable, build: Callable[[], T]) -> None:
        """Build `key` again although its entry is fresh (it may say "in 5
        min" when it is now in 4); nothing is done while another caller is
        building it. Ask `claim` first, so that one caller does it."""
        lock = self._builder(key)
        if not lock.acquire(blocking=False):
            return
        try:
            now, changes, stamp = self.clock(), self.changes(), self.stamp()
            value = build()
            self.misses += 1
            if stamp is not None:
                self._put(key, _Entry(stamp, None, None, changes, now, value))
        finally:
            lock.release()

    def confirm_scoped(self) -> int:
        """Confirm, in one read of their stamps, every entry with a scope
        that the store has changed since, and whose scope has not: they stay
        fresh without each waiting for a request to check it. Returns how
        many were confirmed. A background task calls it twice per lag."""
        if self.scope_stamps is None:
            return 0
        now, changes, stamp = self.clock(), self.changes(), self.stamp()
        if stamp is None:
            return 0
        with self._lock:
            waiting = {
                key: entry
                for key, entry in self._entries.items()
                if entry.scope is not None and entry.stamp != stamp
            }
        if not waiting:
            return 0
        stamps = self.scope_stamps(sorted({e.scope for e in waiting.values() if e.scope}))
        confirmed = 0
        with self._lock:
            for key, seen in waiting.items():
                entry = self._entries.get(key)
                # Unless rebuilt meanwhile, and if its scope did not move.
                if entry is seen and entry.scope is not None and stamps[entry.scope] == entry.part:
                    self._entries[key] = dataclasses.replace(
                        entry, stamp=stamp, changes=changes, built=now
                    )
                    confirmed += 1
        return confirmed

    def _fresh(self, key: Hashable, stamp: int | None, lag: float) -> tuple[T] | None:
        """The entry's value if the store is unchanged since it was built, or
        if it is younger than `lag` and this process changed nothing since."""
        if stamp is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found.stamp != stamp and not (
                self.clock() - found.built < lag and found.changes == self.changes()
            ):
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return (found.value,)

    def _same_scope(self, key: Hashable, now: _Entry[None]) -> tuple[T] | None:
        """The entry for `key` if its scope stamp is still `now.part`,
        confirmed as of `now` (whose stamp and time were read before the
        scope, so nothing committed in between is missed)."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.part != now.part:
                return None
            self._claims.pop(key, None)
            self._entries[key] = dataclasses.replace(
                found, stamp=now.stamp, changes=now.changes, built=now.built
            )
            self._entries.move_to_end(key)
            self.hits += 1
            return (found.value,)

    def _put(self, key: Hashable, entry: _Entry[T]) -> None:
        with self._lock:
            self._claims.pop(key, None)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def _builder(self, key: Hashable) -> threading.Lock:
        with self._lock:
            lock = self._building.get(key)
            if lock is None:
                if len(self._building) > 4 * self.size:
                    self._building.clear()  # at worst, two callers build one value
                lock = self._building[key] = threading.Lock()
            return lock

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class ScopedMemo(Generic[T]):
    """A bounded LRU of values each valid while its own stamp has not moved
    (for one job's runs: `Store.runs_stamps`). The caller reads the stamps of
    many keys in one query, takes what is still valid, and rebuilds only the
    rest, reading the stamps before what it builds from."""

    def __init__(self, *, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, T]] = OrderedDict()
        self._lock = threading.Lock()

    def pick(self, stamps: dict[str, int]) -> dict[str, T]:
        """The values still valid for `stamps` (key -> current stamp)."""
        found: dict[str, T] = {}
        with self._lock:
            for key, stamp in stamps.items():
                entry = self._entries.get(key)
                if entry is not None and entry[0] == stamp:
                    self._entries.move_to_end(key)
                    found[key] = entry[1]
        return found

    def put(self, key: str, stamp: int, value: T) -> None:
        with self._lock:
            self._entries[key] = (stamp, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
