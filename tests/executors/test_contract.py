"""One contract, every kind of target: what the engine may rely on from any executor."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

from clocktower.executors import get_executor
from clocktower.executors.base import FireContext, Outcome
from clocktower.model import CommandTarget, HttpTarget, PythonTarget, RunState, Target

from . import pytargets
from .conftest import HttpServer, RecordingSink
from .procs import live_in_group

TIMEOUT = 0.5
GRACE = 0.5

EXPECTED_CONTEXT = {
    "job": "nightly",
    "run_id": "42",
    "attempt": "2",
    "scheduled_for": "2024-03-10T03:00:00Z",
    "idempotency_key": "nightly:20240310T030000.000000Z",
    "trigger": "retry",
}

Check = Callable[[Outcome, RecordingSink], None]


@dataclass(frozen=True)
class Kind:
    name: str
    executor_kind: str
    success: Callable[[HttpServer], Target]
    check_success: Check
    failure: Callable[[HttpServer], Target]
    check_failure: Check
    slow: Callable[[HttpServer], Target]
    started: Callable[[RecordingSink, HttpServer], Awaitable[int | None]]
    probe: Callable[[HttpServer], Target]
    read_context: Callable[[Outcome, RecordingSink, HttpServer], dict[str, str]]
    progress: Callable[[HttpServer], Target] | None = None


async def _started_pid(sink: RecordingSink, server: HttpServer) -> int | None:
    """The pid in the target's "started <pid>" line; None if it is this process (a thread)."""
    line = await sink.wait_for_line("started")
    pid = int(line.split()[-1])
    return None if pid == os.getpid() else pid


# --------------------------------------------------------------------------- command


def _command_success(outcome: Outcome, sink: RecordingSink) -> None:
    assert outcome.exit_code == 0
    assert sink.text("stdout") == ["hello"]


def _command_failure(outcome: Outcome, sink: RecordingSink) -> None:
    assert outcome.exit_code == 3
    assert outcome.error == "exited with status 3"
    assert sink.text("stderr") == ["oops"]


def _command_context(outcome: Outcome, sink: RecordingSink, server: HttpServer) -> dict[str, str]:
    env = dict(line.split("=", 1) for line in sink.text("stdout") if "=" in line)
    names = {key: f"CLOCKTOWER_{key.upper()}" for key in EXPECTED_CONTEXT}
    return {key: env[name] for key, name in names.items()}


COMMAND = Kind(
    name="command",
    executor_kind="command",
    success=lambda _: CommandTarget("echo hello"),
    check_success=_command_success,
    failure=lambda _: CommandTarget("echo oops >&2; exit 3"),
    check_failure=_command_failure,
    slow=lambda _: CommandTarget("echo started $$; sleep 30"),
    started=_started_pid,
    probe=lambda _: CommandTarget("env"),
    read_context=_command_context,
    progress=lambda _: CommandTarget("echo '::progress 40/100'; echo '::progress 3'"),
)

# --------------------------------------------------------------------------- http


def _http_success(outcome: Outcome, sink: RecordingSink) -> None:
    assert outcome.http_status == 200
    assert any("hello" in line for line in sink.text("stdout"))


def _http_failure(outcome: Outcome, sink: RecordingSink) -> None:
    assert outcome.http_status == 500
    assert outcome.error == "HTTP 500 Internal Server Error (expected 2xx)"
    assert sink.text("stdout") == ["status 500"]


async def _http_started(sink: RecordingSink, server: HttpServer) -> None:
    assert await asyncio.to_thread(server.slow_started.wait, 10)


def _http_context(outcome: Outcome, sink: RecordingSink, server: HttpServer) -> dict[str, str]:
    headers = server.requests[-1].headers
    names = {key: f"x-clocktower-{key.replace('_', '-')}" for key in EXPECTED_CONTEXT}
    names["idempotency_key"] = "idempotency-key"
    return {key: headers[name] for key, name in names.items()}


HTTP = Kind(
    name="http",
    executor_kind="http",
    success=lambda server: HttpTarget(server.at("/ok?say=hello")),
    check_success=_http_success,
    failure=lambda server: HttpTarget(server.at("/status/500")),
    check_failure=_http_failure,
    slow=lambda server: HttpTarget(server.at("/slow")),
    started=_http_started,
    probe=lambda server: HttpTarget(server.at("/ok")),
    read_context=_http_context,
)

# --------------------------------------------------------------------------- python


def _python_success(outcome: Outcome, sink: RecordingSink) -> None:
    assert outcome.result == "hi"
    assert sink.text("log") == ["INFO hello"]


def _python_failure(outcome: Outcome, sink: RecordingSink) -> None:
    assert outcome.error == "ValueError: boom"
    stderr = sink.text("stderr")
    assert stderr[0] == "Traceback (most recent call last):"
    assert stderr[-1] == "ValueError: boom"


def _python_context(outcome: Outcome, sink: RecordingSink, server: HttpServer) -> dict[str, str]:
    seen = dict(outcome.result)
    seen["scheduled_for"] = datetime.fromisoformat(seen["scheduled_for"]).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    return {key: str(seen[key]) for key in EXPECTED_CONTEXT}


def _python(isolation: str) -> Kind:
    def target(name: str) -> Callable[[HttpServer], Target]:
        return lambda _: PythonTarget(f"{pytargets.__name__}:{name}", isolation=isolation)  # type: ignore[arg-type]

    return Kind(
        name=f"python-{isolation}",
        executor_kind="python",
        success=target("hello"),
        check_success=_python_success,
        failure=target("fail"),
        check_failure=_python_failure,
        slow=target("wait_for_stop"),
        started=_started_pid,
        probe=target("describe_ctx"),
        read_context=_python_context,
        progress=target("report_progress"),
    )


KINDS = [COMMAND, HTTP, _python("thread"), _python("process")]
ALL = [pytest.param(kind, id=kind.name) for kind in KINDS]
WITH_PROGRESS = [pytest.param(kind, id=kind.name) for kind in KINDS if kind.progress]


async def execute(kind: Kind, target: Target, fire: FireContext, sink: RecordingSink) -> Outcome:
    executor = get_executor(kind.executor_kind)
    return await executor.execute(target, fire, sink, timeout=TIMEOUT, kill_grace=GRACE)


@pytest.mark.parametrize("kind", ALL)
async def test_success(
    kind: Kind, fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await execute(kind, kind.success(http_server), fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.error is None
    kind.check_success(outcome, sink)
    assert sink.threads == {threading.get_ident()}


@pytest.mark.parametrize("kind", ALL)
async def test_failure(
    kind: Kind, fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await execute(kind, kind.failure(http_server), fire, sink)
    assert outcome.state is RunState.FAILED
    assert not outcome.permanent
    kind.check_failure(outcome, sink)


@pytest.mark.parametrize("kind", ALL)
async def test_timeout(
    kind: Kind, fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await execute(kind, kind.slow(http_server), fire, sink)
    assert outcome.state is RunState.TIMED_OUT
    assert outcome.error == "timed out after 0.5s"
    if kind is not HTTP:
        pid = await kind.started(sink, http_server)
        if pid is not None:
            assert live_in_group(pid) == []


@pytest.mark.parametrize("kind", ALL)
async def test_cancellation_stops_the_target_and_propagates(
    kind: Kind, fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    executor = get_executor(kind.executor_kind)
    task = asyncio.create_task(
        executor.execute(kind.slow(http_server), fire, sink, timeout=30, kill_grace=GRACE)
    )
    pid = await kind.started(sink, http_server)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if pid is not None:
        assert live_in_group(pid) == []


@pytest.mark.parametrize("kind", ALL)
async def test_fire_context_reaches_the_target(
    kind: Kind, fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await execute(kind, kind.probe(http_server), fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert kind.read_context(outcome, sink, http_server) == EXPECTED_CONTEXT


@pytest.mark.parametrize("kind", WITH_PROGRESS)
async def test_progress(
    kind: Kind, fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    assert kind.progress is not None
    outcome = await execute(kind, kind.progress(http_server), fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert sink.progress_updates == [(40, 100), (3, None)]
    assert not any("progress" in line for line in sink.text())
