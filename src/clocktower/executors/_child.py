"""The child side of `isolation = "process"`: import the target, call it, report.

Started by `_pyprocess` with a JSON document on stdin. Messages to the parent
(progress, log records, the result or the error) are JSON lines on the pipe
named by `channel_fd`; stdout and stderr are left to the function.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from clocktower.executors._context import RunContext, fire_from_json
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


class _Channel:
    """JSON lines to the parent; usable from any thread of the function."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self._lock = threading.Lock()

    def send(self, **message: Any) -> None:
        line = json.dumps(message, allow_nan=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def progress(self, done: float, total: float | None) -> None:
        self.send(type="progress", done=done, total=total)

    def log(self, text: str) -> None:
        self.send(type="log", text=text)


def _detach_stdin() -> None:
    """Point fd 0 at /dev/null, as for commands: the function reads EOF, not our spec."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _stop_on_sigterm(ctx: RunContext) -> None:
    """On SIGTERM (timeout, cancellation), set `ctx.should_stop()` and raise SystemExit in
    the function, as Ctrl-C raises KeyboardInterrupt: its `finally` blocks and context
    managers run during the grace period, and the traceback shows where it was."""

    def stop(signum: int, frame: FrameType | None) -> None:
        ctx.request_stop()
        raise SystemExit("stopped by SIGTERM (the run timed out or was cancelled)")

    signal.signal(signal.SIGTERM, stop)


def _call(spec: dict[str, Any], channel: _Channel) -> int:
    fire, env = fire_from_json(spec["context"])
    ctx = RunContext.build(fire, env, channel.progress, channel.log)
    _stop_on_sigterm(ctx)
    try:
        fn = resolve(spec["call"])
        args, kwargs = arguments(fn, tuple(spec["args"]), spec["kwargs"], ctx)
    except TargetError as exc:
        channel.send(type="error", error=str(exc), permanent=True)
        return 0
    try:
        value = asyncio.run(fn(*args, **kwargs)) if is_async(fn) else fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
    except BaseException as exc:  # the function's failure is the run's outcome
        if not is_clean_exit(exc):
            print(traceback_tail(exc), file=sys.stderr)
            channel.send(type="error", error=describe(exc), permanent=False)
            return 1
        value = None
    result, note = json_result(value)
    if note is not None:
        channel.log(note)
    channel.send(type="result", value=result)
    return 0


def main() -> None:
    spec = json.loads(sys.stdin.buffer.read())
    _detach_stdin()
    sys.path[:] = spec["sys_path"]
    status = _call(spec, _Channel(spec["channel_fd"]))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: threads the function left behind must not keep
    # the run going (the parent stops what remains of the process group).
    os._exit(status)
