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
more than the calls did (bench/firing.py (a)). A sleeping thread is woken
only when the queue holds more calls than there are free threads awake, and
the one that fell asleep last goes first, so that the others stay asleep
long enough to end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Call = Callable[[], None]
Queued = tuple[Call, Call, str]


class Workers:
    def __init__(self, *, idle_timeout: float = 60.0, prefix: str = "clocktower-python") -> None:
        self.idle_timeout = idle_timeout
        self.prefix = prefix
        self._calls: deque[Queued] = deque()  # waiting for a thread
        self._lock = threading.Lock()
        self._free = 0  # threads not executing a call: together they take every queued call
        self._asleep: list[threading.Event] = []  # free threads waiting, the latest last
        self._started = 0

    def submit(self, work: Call, then: Call, name: str) -> None:
        """Run `work` in a thread named `name`, then `then`; neither may raise.

        The thread counts as free before `then` runs, so a caller that is told
        and submits the next call at once gets the same thread.
        """
        call = (work, then, name)
        with self._lock:
            self._calls.append(call)
            if len(self._calls) <= self._free:
                if len(self._calls) > self._free - len(self._asleep):
                    self._asleep.pop().set()  # not enough free threads awake
                return
            self._free += 1  # a new thread, started for this call
            self._started += 1
        try:
            threading.Thread(target=self._serve, name=name, daemon=True).start()
        except BaseException:  # out of threads: the call is not made
            with self._lock:
                self._free -= 1
                self._started -= 1
                if call in self._calls:
                    self._calls.remove(call)
                    raise
            # Taken meanwhile by a thread that came free: it runs after all.

    @property
    def threads_started(self) -> int:
        return self._started

    @property
    def idle(self) -> int:
        with self._lock:
            return self._free

    def _serve(self) -> None:
        me = threading.current_thread()
        wake = threading.Event()
        while (call := self._take(wake)) is not None:
            work, then, name = call
            me.name = name
            work()
            me.name = f"{self.prefix}-idle"
            with self._lock:
                self._free += 1
            then()
            del call, work, then  # while asleep, hold nothing of the last call (its loop)

    def _take(self, wake: threading.Event) -> Queued | None:
        """The next call, sleeping until there is one; None once idle for too long."""
        while True:
            with self._lock:
                if self._calls:
                    self._free -= 1
                    return self._calls.popleft()
                wake.clear()
                self._asleep.append(wake)
            woken = wake.wait(self.idle_timeout)
            with self._lock:
                if woken or wake not in self._asleep:
                    continue  # woken for a call (maybe just as it timed out)
                self._asleep.remove(wake)
                if not self._calls:
                    self._free -= 1
                    return None
