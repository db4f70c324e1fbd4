"""Shell command targets: `/bin/sh -c COMMAND` in its own process group.

The command sees the server's environment, then the target's `env`, then the
job's env and the run's override (later wins), then the `CLOCKTOWER_*` fire
context. `${VAR}` in those env values is read from the server's environment
when the run starts; the command line itself is left to the shell.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from clocktower.executors._env import ExpansionError, expand_env
from clocktower.executors._output import stream_writer
from clocktower.executors._process import (
    Child,
    Ending,
    describe_exit,
    format_seconds,
    prepare_artifacts,
)
from clocktower.executors.base import FireContext, Outcome, OutputSink
from clocktower.model import CommandTarget, RunState, Target

SHELL = "/bin/sh"


def command_env(target: CommandTarget, ctx: FireContext) -> dict[str, str]:
    """The environment the command runs with. Raises ExpansionError."""
    server = os.environ
    env = dict(server)
    env.update(expand_env(target.env, server))
    env.update(expand_env(ctx.env, server))
    env.update(ctx.as_env())
    return env


def outcome_of(ending: Ending, time_limit: float) -> Outcome:
    """How a child's ending reads as a run's outcome."""
    code = ending.returncode
    if ending.timed_out:
        return Outcome(
            RunState.TIMED_OUT,
            exit_code=code,
            error=f"timed out after {format_seconds(time_limit)}",
        )
    if code is None:
        return Outcome(RunState.FAILED, error="the process did not exit, even after SIGKILL")
    if code == 0:
        return Outcome(RunState.SUCCEEDED, exit_code=0)
    return Outcome(RunState.FAILED, exit_code=code, error=describe_exit(code))


class CommandExecutor:
    kind = "command"

    async def execute(
        self,
        target: Target,
        ctx: FireContext,
        sink: OutputSink,
        *,
        timeout: float,  # noqa: ASYNC109 -- the Executor protocol names it
        kill_grace: float,
    ) -> Outcome:
        if not isinstance(target, CommandTarget):
            raise TypeError(f"CommandExecutor cannot run a {type(target).__name__}")
        try:
            env = command_env(target, ctx)
        except ExpansionError as exc:
            return Outcome.failed(str(exc), permanent=True)
        problem = prepare_artifacts(Path(ctx.artifacts_dir))
        if problem is not None:
            return Outcome.failed(problem, permanent=False)
        try:
            child, _ = await Child.start(
                [SHELL, "-c", target.command],
                env=env,
                cwd=target.cwd,
                stdout=stream_writer(sink, "stdout", progress=True),
                stderr=stream_writer(sink, "stderr"),
                memory_limit=target.memory_limit,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return Outcome.failed(_start_error(exc, target), permanent=True)
        try:
            ending = await child.run(timeout, kill_grace, lambda text: sink.write("log", text))
        finally:
            child.close()
        return outcome_of(ending, timeout)


def _start_error(exc: OSError | subprocess.SubprocessError, target: CommandTarget) -> str:
    if target.cwd is not None and not Path(target.cwd).is_dir():
        return f"working directory {target.cwd!r} does not exist"
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM and target.memory_limit:
        return f"memory_limit ({target.memory_limit} bytes) is too small to start {SHELL}"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot start {SHELL}: {reason}"
