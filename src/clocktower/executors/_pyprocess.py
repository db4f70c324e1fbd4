"""`isolation = "process"`: a Python target run in a child interpreter.

The child (`clocktower.executors._child`) is started like a command: its own
process group, the memory cap as RLIMIT_AS, SIGTERM → grace → SIGKILL on
timeout or cancellation. It receives the call, its arguments and the fire
context as one JSON document on stdin, imports with the server's `sys.path`,
and reports progress, log records and the return value (or the error) as JSON
lines on a pipe of their own, so that whatever the function prints stays
ordinary output.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clocktower.executors._context import fire_to_json
from clocktower.executors._output import stream_writer
from clocktower.executors._process import Child, Ending, describe_exit, format_seconds
from clocktower.executors.base import FireContext, Outcome, OutputSink
from clocktower.model import PythonTarget, RunState

MAX_MESSAGE = 16 * 1024 * 1024  # one JSON line from the child; bounds the return value

# Makes the child import this very Clocktower, even if it is not installed but on sys.path.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from clocktower.executors._child import main; main()"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class _Messages:
    """What the child said on its message pipe."""

    def __init__(self, sink: OutputSink) -> None:
        self._sink = sink
        self.returned = False
        self.result: Any = None
        self.error: str | None = None
        self.permanent = False

    def handle(self, lines: list[str]) -> None:
        for line in lines:
            try:
                message = json.loads(line)
                self._dispatch(message)
            except (ValueError, KeyError, TypeError):
                self._sink.write("log", "ignored an unreadable message from the python process")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "progress":
            total = message["total"]
            self._sink.progress(float(message["done"]), None if total is None else float(total))
        elif kind == "log":
            self._sink.write("log", str(message["text"]))
        elif kind == "result":
            self.returned, self.result = True, message["value"]
        elif kind == "error":
            self.error, self.permanent = str(message["error"]), bool(message["permanent"])

    def outcome(self, ending: Ending, time_limit: float, memory_limit: int | None) -> Outcome:
        code = ending.returncode
        if ending.timed_out:
            error = f"timed out after {format_seconds(time_limit)}"
            return Outcome(RunState.TIMED_OUT, exit_code=code, error=error)
        if self.error is not None:
            return Outcome(
                RunState.FAILED, exit_code=code, error=self.error, permanent=self.permanent
            )
        if self.returned and code == 0:
            return Outcome(RunState.SUCCEEDED, exit_code=0, result=self.result)
        if code is None:
            return Outcome(
                RunState.FAILED, error="the python process did not exit, even after SIGKILL"
            )
        error = f"the python process {describe_exit(code)} before returning"
        if memory_limit is not None and code != 0:
            error += f" (memory_limit is {memory_limit} bytes)"
        return Outcome(RunState.FAILED, exit_code=code, error=error)


def _spec(
    target: PythonTarget, fire: FireContext, env: Mapping[str, str], channel_fd: int
) -> bytes:
    """The child's instructions. Raises TypeError/ValueError if something is not JSON."""
    document = {
        "call": target.call,
        "args": list(target.args),
        "kwargs": dict(target.kwargs),
        "context": fire_to_json(fire, env),
        "sys_path": sys.path,
        "channel_fd": channel_fd,
    }
    return json.dumps(document, allow_nan=False).encode()


def _check_json(target: PythonTarget, fire: FireContext) -> str | None:
    """Why the call cannot be sent to a child process, if it cannot."""
    for what, value in (
        ("args", target.args),
        ("kwargs", target.kwargs),
        ("payload", fire.payload),
    ):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return f'{what} must be JSON with isolation = "process": {exc}'
    return None


def _start_error(exc: OSError | subprocess.SubprocessError, memory_limit: int | None) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM and memory_limit:
        return f"memory_limit ({memory_limit} bytes) is too small to start Python"
    return f"cannot start the python process: {exc}"


async def run_in_process(
    target: PythonTarget,
    fire: FireContext,
    env: Mapping[str, str],
    sink: OutputSink,
    *,
    time_limit: float,
    kill_grace: float,
) -> Outcome:
    problem = _check_json(target, fire)
    if problem is not None:
        return Outcome(RunState.FAILED, error=problem, permanent=True)
    messages = _Messages(sink)
    child_env = {**os.environ, **env, **fire.as_env(), "PYTHONUNBUFFERED": "1"}
    try:
        child, channel_fd = await Child.start(
            [sys.executable, "-c", _BOOT, _PACKAGE_ROOT],
            env=child_env,
            cwd=None,
            stdout=stream_writer(sink, "stdout"),
            stderr=stream_writer(sink, "stderr"),
            channel=messages.handle,
            channel_max_line=MAX_MESSAGE,
            memory_limit=target.memory_limit,
            with_stdin=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Outcome(
            RunState.FAILED, error=_start_error(exc, target.memory_limit), permanent=True
        )
    feeding = asyncio.create_task(child.send_stdin(_spec(target, fire, env, channel_fd or 0)))
    try:
        ending = await child.run(time_limit, kill_grace, lambda text: sink.write("log", text))
    finally:
        feeding.cancel()
        try:
            await asyncio.wait({feeding})
        finally:
            child.close()
        if feeding.done() and not feeding.cancelled():
            feeding.exception()  # retrieved: a failed feed shows as a child without a result
    return messages.outcome(ending, time_limit, target.memory_limit)
