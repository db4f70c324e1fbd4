"""Output and progress of a running run, batched into the store.

Executors write line by line; writing each line in its own transaction would
make a chatty job cost one commit per line. The sink buffers lines and writes
them in batches (every `interval` seconds or `max_lines` lines), and keeps only
the latest progress, written at most once per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from clocktower.executors.base import Stream
from clocktower.store import Store

Line = tuple[float, str, str]


class StoreSink:
    """An `OutputSink` that batches into the store. Thread-safe: python targets
    running in a thread log through it."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        *,
        cap: int,
        interval: float = 0.5,
        max_lines: int = 500,
        on_output: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.cap = cap
        self.interval = interval
        self.max_lines = max_lines
        self.on_output = on_output
        self._lock = threading.Lock()
        self._lines: list[Line] = []
        self._progress: tuple[float, float | None] | None = None
        self._full = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------ OutputSink

    def write(self, stream: Stream, text: str) -> None:
        now = time.time()
        with self._lock:
            self._lines.extend((now, stream, line) for line in text.split("\n"))
            full = len(self._lines) >= self.max_lines
        if full:
            self._loop.call_soon_threadsafe(self._full.set)

    def progress(self, done: float, total: float | None) -> None:
        with self._lock:
            self._progress = (done, total)

    # ------------------------------------------------------------ flushing

    def _take(self) -> tuple[list[Line], tuple[float, float | None] | None]:
        with self._lock:
            lines, self._lines = self._lines, []
            progress, self._progress = self._progress, None
        return lines, progress

    async def flush(self) -> None:
        lines, progress = self._take()
        if lines:
            await asyncio.to_thread(self.store.append_output, self.run_id, lines, cap=self.cap)
            if self.on_output is not None:
                self.on_output(self.run_id)
        if progress is not None:
            await asyncio.to_thread(self.store.set_progress, self.run_id, *progress)

    async def pump(self) -> None:
        """Flush periodically until cancelled (the caller flushes once more)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.interval)
            self._full.clear()
            await self.flush()
