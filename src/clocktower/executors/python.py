"""Python callable targets: `package.module:function` with args and kwargs.

Async functions are awaited on the server's event loop; a timeout or a
cancellation interrupts them at their next `await`. Sync functions run in a
worker thread, which is reused between calls and never shared with anything
else (`_threads`). A thread cannot be stopped from outside: on timeout or
cancellation the run ends at once (timed out / cancelled), `ctx.should_stop()`
turns true, and the thread is abandoned, still running, until the function
returns. Jobs that need a hard timeout or a memory cap use
`isolation = "process"`, which runs the function in a child process that is
killed like a command (see `_pyprocess`).

In thread mode `print()` is not captured: stdout is shared by the whole server
and redirecting it would mix every thread's output. Use `ctx.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import os
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from clocktower.executors._context import RunContext
from clocktower.executors._env import ExpansionError, expand_env
from clocktower.executors._process import format_seconds
from clocktower.executors._pycall import (
    TargetError,
    arguments,
    describe,
    is_async,
    is_clean_exit,
    json_result,
    resolve,
    traceback_tail,
)
from clocktower.executors._pyprocess import run_in_process
from clocktower.executors._threads import Workers
from clocktower.executors.base import FireContext, Outcome, OutputSink
from clocktower.model import PythonTarget, RunState, Target

__all__ = ["PythonExecutor", "RunContext"]

_ABANDONED = (
    "the function runs in a thread, which cannot be stopped: it was asked to stop "
    '(ctx.should_stop()) and keeps running until it returns; use isolation = "process" '
    "for a hard timeout"
)


class _LoopBridge:
    """Carries a run's sink calls from the function's thread to the event loop.

    The engine's sink is not thread-safe, so calls from other threads are
    queued on the loop. Once the run is over, calls are dropped: an abandoned
    thread must not write into a run that has ended.
    """

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._open = True

    def progress(self, done: float, total: float | None) -> None:
        self._call(self._sink.progress, done, total)

    def log(self, text: str) -> None:
        self._call(self._sink.write, "log", text)

    def close(self) -> None:
        self._open = False

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if not self._open:
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, fn, args)
        except RuntimeError:  # the loop is closed
            self._open = False

    def _deliver(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        if self._open:
            fn(*args)


class _Returns:
    """Results of calls that ended in worker threads, handed to one event loop
    in batches: the first wakes the loop, those that end before it runs join
    it. A wake-up per call costs a system call and a turn at the GIL each."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the loop is the key this is kept under (`_RETURNS`).
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._ready: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []

    def put(self, future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
        with self._lock:
            first = not self._ready
            self._ready.append((future, value, error))
        loop = self._loop()
        if first and loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for future, value, error in ready:
            if future.done():  # its run ended first (timed out, cancelled)
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)


_WORKERS = Workers()
_RETURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Returns] = (
    weakref.WeakKeyDictionary()
)


async def _in_thread(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], name: str
) -> Any:
    """Call `fn` in a worker thread (see `_threads`) and await its result."""
    loop = asyncio.get_running_loop()
    returns = _RETURNS.get(loop)
    if returns is None:
        returns = _RETURNS[loop] = _Returns(loop)
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()
    outcome: list[Any] = [None, None]  # the value, or the exception raised

    def work() -> None:
        try:
            outcome[0] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task, which decides
            outcome[1] = exc

    def then() -> None:
        returns.put(future, outcome[0], outcome[1])

    _WORKERS.submit(work, then, name)
    return await future


async def _resolve(call: str) -> Callable[..., Any]:
    """The target's function; imported in a thread the first time (imports may
    be slow), found directly once its module is loaded."""
    module = sys.modules.get(call.partition(":")[0])
    spec = getattr(module, "__spec__", None)
    if module is not None and not getattr(spec, "_initializing", False):
        return resolve(call)
    return await asyncio.to_thread(resolve, call)  # also while another thread imports it


async def _call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Any:
    if is_async(fn):
        return await fn(*args, **kwargs)
    value = await _in_thread(fn, args, kwargs, name)
    if inspect.isawaitable(value):  # a sync wrapper that returned a coroutine
        value = await value
    return value


def _raised(exc: BaseException, sink: OutputSink) -> Outcome:
    sink.write("stderr", traceback_tail(exc))
    return Outcome.failed(describe(exc))


def _returned(value: Any, sink: OutputSink) -> Outcome:
    result, note = json_result(value)
    if note is not None:
        sink.write("log", note)
    return Outcome(RunState.SUCCEEDED, result=result)


async def _run_here(
    target: PythonTarget,
    fire: FireContext,
    env: Mapping[str, str],
    sink: OutputSink,
    time_limit: float,
) -> Outcome:
    """Thread mode: an async function on this loop, a sync one in a thread."""
    bridge = _LoopBridge(sink)
    ctx = RunContext.build(fire, env, bridge.progress, bridge.log)
    name = f"clocktower-{fire.job_id}-{fire.run_id}"
    timer = asyncio.timeout(time_limit)
    fn: Callable[..., Any] | None = None
    try:
        async with timer:
            fn = await _resolve(target.call)
            args, kwargs = arguments(fn, target.args, target.kwargs, ctx)
            value = await _call(fn, args, kwargs, name)
    except TargetError as exc:
        return Outcome.failed(str(exc), permanent=True)
    except asyncio.CancelledError:
        ctx.request_stop()
        if fn is not None and not is_async(fn):
            sink.write("log", f"cancelled: {_ABANDONED}")
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        if timer.expired():
            ctx.request_stop()
            if fn is not None and not is_async(fn):
                sink.write("log", f"timed out: {_ABANDONED}")
            return Outcome(
                RunState.TIMED_OUT, error=f"timed out after {format_seconds(time_limit)}"
            )
        if not is_clean_exit(exc):
            return _raised(exc, sink)
        value = None
    finally:
        bridge.close()
    return _returned(value, sink)


class PythonExecutor:
    kind = "python"

    async def execute(
        self,
        target: Target,
        ctx: FireContext,
        sink: OutputSink,
        *,
        timeout: float,  # noqa: ASYNC109 -- the Executor protocol names it
        kill_grace: float,
    ) -> Outcome:
        if not isinstance(target, PythonTarget):
            raise TypeError(f"PythonExecutor cannot run a {type(target).__name__}")
        try:
            env = expand_env(ctx.env, os.environ)
        except ExpansionError as exc:
            return Outcome.failed(str(exc), permanent=True)
        if target.isolation == "process":
            return await run_in_process(
                target, ctx, env, sink, time_limit=timeout, kill_grace=kill_grace
            )
        return await _run_here(target, ctx, env, sink, timeout)
