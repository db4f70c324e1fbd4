"""The worker threads of sync Python targets: reused, never blocked by a stuck call."""

from __future__ import annotations

import threading
import time

import pytest

from clocktower.executors._threads import Workers


def call(workers: Workers, work: object, name: str = "call") -> threading.Event:
    """Submit `work` (a callable) and return an event set once it is done."""
    done = threading.Event()
    workers.submit(work, done.set, name)  # type: ignore[arg-type]
    return done


def test_calls_one_after_another_share_one_thread() -> None:
    workers = Workers()
    seen: list[int | None] = []
    for _ in range(20):
        assert call(workers, lambda: seen.append(threading.get_ident())).wait(5)
    assert len(set(seen)) == 1
    assert workers.threads_started == 1


def test_a_stuck_call_does_not_hold_up_the_next() -> None:
    workers = Workers()
    release = threading.Event()
    stuck = call(workers, lambda: release.wait(10))
    try:
        assert call(workers, lambda: None).wait(5)
        assert not stuck.is_set()
        assert workers.threads_started == 2
    finally:
        release.set()
    assert stuck.wait(5)


def test_calls_at_once_get_threads_of_their_own() -> None:
    workers = Workers()
    barrier = threading.Barrier(4, timeout=5)  # only passes if all four run together
    events = [call(workers, barrier.wait) for _ in range(4)]
    assert all(event.wait(5) for event in events)
    assert workers.threads_started == 4
    assert workers.idle == 4


def test_the_thread_is_named_after_its_call_and_idle_ones_end() -> None:
    workers = Workers(idle_timeout=0.05, prefix="ct-test")
    names: list[str] = []
    assert call(workers, lambda: names.append(threading.current_thread().name), "run-7").wait(5)
    assert names == ["run-7"]
    deadline = time.monotonic() + 5
    while workers.idle or any(t.name == "ct-test-idle" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "an idle worker thread did not end"
        time.sleep(0.01)
    assert call(workers, lambda: None).wait(5)  # a new thread serves the next call
    assert workers.threads_started == 2


def test_a_pool_used_one_call_at_a_time_shrinks_to_one_thread() -> None:
    """After a burst, steady calls one at a time keep one thread busy; the
    others, left asleep, end after their idle timeout."""
    workers = Workers(idle_timeout=0.3, prefix="ct-shrink")
    barrier = threading.Barrier(6, timeout=5)
    assert all(event.wait(5) for event in [call(workers, barrier.wait) for _ in range(6)])
    alive = lambda: sum(t.name == "ct-shrink-idle" for t in threading.enumerate())  # noqa: E731
    deadline = time.monotonic() + 20
    while alive() > 1:  # a call every 20 ms: more often than the timeout
        assert time.monotonic() < deadline, f"{alive()} threads still kept"
        assert call(workers, lambda: None).wait(5)
        time.sleep(0.02)
    assert workers.threads_started == 6


def test_a_call_without_a_thread_to_run_it_is_refused_and_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workers = Workers()
    ran: list[str] = []

    class NoThreads(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading, "Thread", NoThreads)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        workers.submit(lambda: ran.append("refused"), lambda: None, "refused")
    monkeypatch.undo()
    assert (workers.idle, workers.threads_started) == (0, 0)
    assert call(workers, lambda: ran.append("next")).wait(5)
    assert ran == ["next"]  # the refused call never runs
