"""Output and progress of a running run, batched into the store.

Executors write line by line; writing each line in its own transaction would
make a chatty job cost one commit per line. The sink buffers lines and writes
them in batches (every `interval` seconds or `max_lines` lines), and keeps only
the latest progress, written at most once per interval. The task that flushes
starts with the first line or progress report: a quiet run costs none.

A program can print faster than the store writes. What it prints meanwhile
waits here, and the store would keep only the head and the newest tail of it
(the run's output cap): once more than `TRIM_AT` times the cap waits, the sink
drops the lines between what still fits in the head and the newest tail, as
the store would, and says how many bytes it cut (`Output.cut`). A run never
holds more than a few times its cap in memory, however fast it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable

from clocktower.executors._output import MAX_LINE, LineSplitter
from clocktower.executors.base import Stream
from clocktower.store.output import Output, head_and_tail, line_bytes

Line = tuple[float, str, str]
TRIM_AT = 2  # times the cap, in characters waiting, before the sink cuts


def _pieces(line: str) -> list[str]:
    """`line`, split into pieces of at most `MAX_LINE` bytes as command output
    is (a Python target may log a line of any length)."""
    if len(line) <= MAX_LINE // 4:  # four bytes a character at most: it fits
        return [line]
    return LineSplitter().feed(line.encode() + b"\n")


class StoreSink:
    """An `OutputSink` that batches into the store, through `send` (the
    engine's writer). Thread-safe: python targets running in a thread log
    through it."""

    def __init__(
        self,
        run_id: int,
        *,
        cap: int,
        send: Callable[[Output], Awaitable[None]],
        interval: float = 0.5,
        max_lines: int = 500,
    ) -> None:
        self.run_id = run_id
        self.cap = cap
        self.send = send
        self.interval = interval
        self.max_lines = max_lines
        self._lock = threading.Lock()
        self._lines: list[Line] = []
        self._waiting = 0  # characters in `_lines`, a lower bound of their bytes
        self._cut: tuple[int, int] | None = None  # (at, bytes) cut from `_lines`
        # Bytes handed to the store or cut so far, exact while the head may
        # still take lines (the store's `output_bytes` when `_lines` arrive).
        self._counted = 0
        self._progress: tuple[float, float | None] | None = None
        self._full: asyncio.Event | None = None  # made with the pump: most runs print nothing
        self._loop = asyncio.get_running_loop()
        self._pump: asyncio.Task[None] | None = None
        self._pumping = False  # a pump is started or about to be (guarded by _lock)
        self._closed = False

    # ------------------------------------------------------------ OutputSink

    def write(self, stream: Stream, text: str) -> None:
        now = time.time()
        lines = [piece for line in text.split("\n") for piece in _pieces(line)]
        with self._lock:
            self._lines.extend((now, stream, line) for line in lines)
            self._waiting += sum(len(line) + 1 for line in lines)
            if self._waiting > TRIM_AT * self.cap:
                self._trim()
            full = len(self._lines) >= self.max_lines
            start = self._claim_pump()
        if start:
            self._loop.call_soon_threadsafe(self._start_pump)
        if full:
            self._loop.call_soon_threadsafe(self._wake)

    def progress(self, done: float, total: float | None) -> None:
        with self._lock:
            self._progress = (done, total)
            start = self._claim_pump()
        if start:
            self._loop.call_soon_threadsafe(self._start_pump)

    def _trim(self) -> None:
        """Drop the waiting lines that the store would cut (`head_and_tail`);
        after a first cut, the head is closed. Holds `_lock`."""
        lines = self._lines
        at, cut = self._cut or (0, 0)
        room = -1 if self._cut else self.cap // 2 - self._counted
        head, tail = head_and_tail(lines[at:], room, self.cap - self.cap // 2)
        if tail > head:
            head, tail = head + at, tail + at
            cut += line_bytes(lines[head:tail])
            del lines[head:tail]
            self._cut = (head, cut)
        self._waiting = sum(len(line[2]) + 1 for line in lines)

    def _claim_pump(self) -> bool:
        """True for the first report: its caller starts the pump (holds `_lock`)."""
        start, self._pumping = not self._pumping, True
        return start

    def _start_pump(self) -> None:
        if not self._closed and self._pump is None:
            self._full = asyncio.Event()
            self._pump = asyncio.create_task(self.pump(), name=f"output-{self.run_id}")

    def _wake(self) -> None:
        if self._full is not None:
            self._full.set()

    def close(self) -> None:
        """Stop flushing periodically (the caller flushes once more)."""
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()

    # ------------------------------------------------------------ flushing

    def take(self) -> Output | None:
        """What is waiting to be stored, if anything (and forget it)."""
        with self._lock:
            lines, self._lines = self._lines, []
            progress, self._progress = self._progress, None
            cut, self._cut = self._cut, None
            self._waiting = 0
            if self._counted <= self.cap // 2:  # past it, the head takes nothing more
                self._counted += line_bytes(lines) + (cut[1] if cut else 0)
        if not lines and progress is None:
            return None
        return Output(self.run_id, lines, self.cap, progress, cut)

    async def flush(self) -> None:
        output = self.take()
        if output is None:
            return
        await self.send(output)

    async def pump(self) -> None:
        """Flush periodically until cancelled (the caller flushes once more)."""
        full = self._full = self._full or asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(full.wait(), self.interval)
            full.clear()
            await self.flush()
