"""Hot responses kept while the store has not changed.

The busiest reads (the first page of jobs, a job's latest runs, the dashboard's
jobs table) are answered from memory when nothing was committed to the store
since they were built. The store's change stamp says so: on SQLite it is
`PRAGMA data_version`, which moves whenever any connection of any process
commits, so a cached answer is never older than the data. Where the store
cannot tell cheaply (PostgreSQL), nothing is cached.

A busy node commits every few milliseconds, and most commits concern one job.
An answer about one job's runs therefore also carries that job's own stamp
(`Store.runs_stamp`): when the store changed but that stamp did not, the
answer is still the data's and is kept. Without it, each commit would make
every job's cached runs stale at once, and the next requests would all
rebuild them together.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from clocktower.store import Store

T = TypeVar("T")


class StampedCache(Generic[T]):
    """A bounded LRU of values, each valid for the store stamp it was built at."""

    def __init__(self, store: Store, *, size: int = 1024, enabled: bool = True) -> None:
        self.store = store
        self.size = size
        self.enabled = enabled
        # key -> (store stamp, scope stamp or None, value)
        self._entries: OrderedDict[Hashable, tuple[int, int | None, T]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def stamp(self) -> int | None:
        return self.store.change_stamp() if self.enabled else None

    def peek(self, key: Hashable) -> tuple[T] | None:
        """The value for `key` if one is cached and fresh (as a 1-tuple: the
        value itself may be None), without building anything."""
        return self._fresh(key, self.stamp())

    def get_or_build(
        self, key: Hashable, build: Callable[[], T], *, scope: Callable[[], int] | None = None
    ) -> T:
        """The cached value for `key`, or `build()` (cached when the stamp allows).

        `scope`, when given, reads a narrower stamp that moves whenever what
        `build` reads changes: an entry whose scope stamp has not moved is
        still fresh after other changes to the store.

        One caller builds a missing value while the others asking for the same
        key wait for it, so a change does not make fifty requests render the
        same page at once. The stamps are read before building: a change
        committed while the value is built makes the entry stale at once."""
        found = self._fresh(key, self.stamp())
        if found is not None:
            return found[0]
        with self._builder(key):
            stamp = self.stamp()
            found = self._fresh(key, stamp)
            if found is not None:
                return found[0]
            part = None
            if scope is not None and stamp is not None:
                part = scope()
                kept = self._same_scope(key, stamp, part)
                if kept is not None:
                    return kept[0]
            value = build()
            self.misses += 1
            if stamp is not None:
                self._put(key, stamp, part, value)
            return value

    def refresh(self, key: Hashable, build: Callable[[], T]) -> None:
        """Build `key` again although its entry is fresh (it may say "in 5
        min" when it is now in 4); nothing is done while another caller is
        building it."""
        lock = self._builder(key)
        if not lock.acquire(blocking=False):
            return
        try:
            stamp = self.stamp()
            value = build()
            if stamp is not None:
                self._put(key, stamp, None, value)
        finally:
            lock.release()

    def _fresh(self, key: Hashable, stamp: int | None) -> tuple[T] | None:
        if stamp is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != stamp:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return (found[2],)

    def _same_scope(self, key: Hashable, stamp: int, part: int) -> tuple[T] | None:
        """The entry for `key` if its scope stamp is still `part`, now marked
        fresh at `stamp` (read before `part`, so nothing committed in between
        is missed)."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[1] != part:
                return None
            self._entries[key] = (stamp, part, found[2])
            self._entries.move_to_end(key)
            self.hits += 1
            return (found[2],)

    def _put(self, key: Hashable, stamp: int, part: int | None, value: T) -> None:
        with self._lock:
            self._entries[key] = (stamp, part, value)
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
