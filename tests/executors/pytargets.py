"""Python targets used by the executor tests (`f"{pytargets.__name__}:NAME"`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from clocktower.executors.python import RunContext

NOT_CALLABLE = 3


def add(a: int, b: int = 0) -> int:
    return a + b


def hello(ctx: RunContext) -> str:
    ctx.log.info("hello")
    return "hi"


async def hello_async(ctx: RunContext) -> str:
    ctx.log.info("hello")
    return "hi"


def fail() -> None:
    raise ValueError("boom")


def describe_ctx(ctx: RunContext) -> dict[str, Any]:
    return {
        "job": ctx.job_id,
        "run_id": ctx.run_id,
        "attempt": ctx.attempt,
        "scheduled_for": ctx.scheduled_for.isoformat(),
        "idempotency_key": ctx.idempotency_key,
        "trigger": str(ctx.trigger),
        "payload": ctx.payload,
        "env": dict(ctx.env),
        "artifacts_dir": str(ctx.artifacts_dir),
    }


def by_annotation(context: RunContext) -> str:
    return context.job_id


def report_progress(ctx: RunContext) -> None:
    ctx.progress(40, 100)
    ctx.progress(3)


def wait_for_stop(ctx: RunContext) -> str:
    """Runs until asked to stop (thread mode) or killed (process mode)."""
    ctx.log.info("started in %d", os.getpid())
    ctx.wait_stop(30)
    return "stopped"


async def sleep_async(ctx: RunContext) -> None:
    ctx.log.info("started in %d", os.getpid())
    await asyncio.sleep(30)


def ignore_sigterm(ctx: RunContext) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.log.info("started in %d", os.getpid())
    time.sleep(30)


def allocate(size: int) -> int:
    return len(bytearray(size))


def prints() -> None:
    print("to stdout")
    print("to stderr", file=sys.stderr)


def write_artifact(ctx: RunContext) -> None:
    (ctx.artifacts_dir / "report.txt").write_text("done")


def unserializable() -> object:
    return object()


def raise_timeout() -> None:
    raise TimeoutError("upstream was slow")


async def raise_timeout_async() -> None:
    raise TimeoutError("upstream was slow")


def echo(value: Any) -> Any:
    return value


def stop_then_wait(ctx: RunContext) -> tuple[bool, bool]:
    """Asked to stop before it waits: the wait returns at once."""
    ctx.request_stop()
    return ctx.should_stop(), ctx.wait_stop(5)


def exit_clean() -> None:
    sys.exit(0)


def exit_3() -> None:
    sys.exit(3)


def environment(name: str) -> str | None:
    return os.environ.get(name)


def leave_child() -> int:
    """Starts a process that outlives the function (in the same process group)."""
    child = subprocess.Popen(["sleep", "1000"])
    return child.pid


def read_stdin() -> str:
    return sys.stdin.read()


def crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Jobs:
    @staticmethod
    def ping() -> str:
        return "pong"


def log_after_stop(ctx: RunContext) -> None:
    ctx.wait_stop(30)
    ctx.log.info("late")


def clean_up_when_stopped(ctx: RunContext) -> None:
    try:
        ctx.log.info("started in %d", os.getpid())
        time.sleep(30)
    finally:
        (ctx.artifacts_dir / "cleanup.txt").write_text(f"stop requested: {ctx.should_stop()}")


EVENTS: dict[str, threading.Event] = {}


def wait_for_event(name: str) -> None:
    """Blocks, ignoring should_stop(), until the test sets the event."""
    EVENTS[name].wait(10)


def which_thread() -> tuple[str, int | None]:
    thread = threading.current_thread()
    return thread.name, thread.ident
