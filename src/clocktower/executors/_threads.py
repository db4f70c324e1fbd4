"""Threads for synchronous Python targets, reused from one call to the next.

Not `concurrent.futures.ThreadPoolExecutor`: a call that timed out or was
cancelled cannot be stopped and keeps its thread until the function returns.
A pool of fixed size fills up with such calls and then stalls every other
job, and the loop's default executor is shared with DNS lookups and the
store. Here a call is queued only when a thread is free to take it; when
none is, a new thread starts, so an abandoned call never delays another. A
thread that stays idle for `idle_timeout` seconds ends. Starting a thread
costs more than a short target, which is why threads are kept at all.

The threads share one queue, and a thread that finishes a call takes the next
queued one at once. Many short calls submitted together therefore run
through one or two threads, instead of waking a thread each: with the event
loop and every thread taking turns at the GIL, a thread woken per call cost
more than the calls did (bench/firing.py (a)).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Call = Callable[[], None]


class Workers:
    def __init__(self, *, idle_timeout: float = 60.0, prefix: str = "clocktower-python") -> None:
        self.idle_timeout = idle_timeout
        self.prefix = prefix
        self._calls: deque[tuple[Call, Call, str]] = deque()  # waiting for a thread
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._free = 0  # threads not executing a call: each takes a queued call
        self._started = 0

    def submit(self, work: Call, then: Call, name: str) -> None:
        """Run `work` in a thread named `name`, then `then`; neither may raise.

        The thread counts as free before `then` runs, so a caller that is told
        and submits the next call at once gets the same thread.
        """
        with self._lock:
            self._calls.append((work, then, name))
            if len(self._calls) <= self._free:
                self._wake.notify()
                return
            self._free += 1  # a new thread, started for this call
            self._started += 1
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    @property
    def threads_started(self) -> int:
        return self._started

    @property
    def idle(self) -> int:
        with self._lock:
            return self._free

    def _serve(self) -> None:
        me = threading.current_thread()
        while (call := self._take()) is not None:
            work, then, name = call
            me.name = name
            work()
            me.name = f"{self.prefix}-idle"
            with self._lock:
                self._free += 1
            then()

    def _take(self) -> tuple[Call, Call, str] | None:
        """The next call, waiting for one; None once idle for too long."""
        with self._lock:
            while not self._calls:
                if not self._wake.wait(self.idle_timeout) and not self._calls:
                    self._free -= 1
                    return None
            self._free -= 1
            return self._calls.popleft()
