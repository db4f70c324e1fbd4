"""Threads for synchronous Python targets, reused from one call to the next.

Not `concurrent.futures.ThreadPoolExecutor`: a call that timed out or was
cancelled cannot be stopped and keeps its thread until the function returns.
A pool of fixed size fills up with such calls and then stalls every other
job, and the loop's default executor is shared with DNS lookups and the
store. Here a call takes an idle thread or, when none is idle, starts a new
one, so an abandoned call never delays another; a thread that stays idle for
`idle_timeout` seconds ends. Starting a thread costs more than a short
target, which is why threads are kept at all.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Call = Callable[[], None]
Task = tuple[Call, Call]  # the work, then who is told it is done


class _Worker:
    __slots__ = ("inbox", "thread")

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None


class Workers:
    def __init__(self, *, idle_timeout: float = 60.0, prefix: str = "clocktower-python") -> None:
        self.idle_timeout = idle_timeout
        self.prefix = prefix
        self._idle: list[_Worker] = []  # a stack: the most recently idle thread goes first
        self._lock = threading.Lock()
        self._started = 0

    def submit(self, work: Call, then: Call, name: str) -> None:
        """Run `work` in a thread named `name`, then `then`; neither may raise.

        The thread is idle again before `then` runs, so a caller that is told
        and submits the next call at once gets the same thread.
        """
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker()
            self._started += 1
            worker.thread = threading.Thread(
                target=self._serve, args=(worker,), name=name, daemon=True
            )
            worker.inbox.put((work, then))
            worker.thread.start()
            return
        if worker.thread is not None:
            worker.thread.name = name
        worker.inbox.put((work, then))

    @property
    def threads_started(self) -> int:
        return self._started

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    def _serve(self, worker: _Worker) -> None:
        while True:
            try:
                work, then = worker.inbox.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if worker in self._idle:
                        self._idle.remove(worker)
                        return
                # Taken off the idle stack just now: its call is on the way.
                work, then = worker.inbox.get()
            work()
            if worker.thread is not None:
                worker.thread.name = f"{self.prefix}-idle"
            with self._lock:
                self._idle.append(worker)
            then()
