"""Retries, timeouts, overlap and history are the same for every kind of
target: one suite, parametrized over commands, HTTP endpoints and Python
functions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from clocktower.model import RunState, TriggerKind
from clocktower.store import Store

from .helpers import first_run_running, make_engine, make_service, settle, step

T0 = datetime(2025, 1, 6, 2, 59, 59, tzinfo=UTC)
AT3 = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)


class Endpoint(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self) -> None:
        if self.path == "/slow":
            Endpoint.release.wait(60)
        attempt = self.headers.get("X-Clocktower-Attempt")
        status = 200 if self.path == "/flaky" and attempt == "2" else 500
        body = f"attempt {attempt}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Endpoint.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


KINDS = ["command", "http", "python-thread", "python-process"]


def target(kind: str, behaviour: str, http_base: str) -> dict[str, Any]:
    if kind == "command":
        script = 'test "$CLOCKTOWER_ATTEMPT" = 2' if behaviour == "flaky" else "sleep 60"
        return {"command": script}
    if kind == "http":
        return {"url": f"{http_base}/{behaviour}", "method": "POST"}
    isolation = kind.removeprefix("python-")
    name = (
        "flaky" if behaviour == "flaky" else f"slow_{'async' if isolation == 'thread' else 'sync'}"
    )
    return {"call": f"tests.engine.targets:{name}", "isolation": isolation}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_failure_is_retried_and_the_retry_succeeds(
    kind: str, store: Store, clock: Any, tmp_path: Path, http_base: str
) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        {
            **target(kind, "flaky", http_base),
            "cron": "0 3 * * *",
            "retries": 1,
            "retry_delay": "1s",
        },
        job_id="flaky",
        actor="t",
    )
    engine = make_engine(store, clock, tmp_path)
    clock.set(AT3)
    await step(engine)
    (retry,) = store.list_runs(job_id="flaky", trigger=TriggerKind.RETRY)
    assert retry.due_at is not None
    clock.set(retry.due_at)
    await step(engine)
    runs = sorted(store.list_runs(job_id="flaky"), key=lambda r: r.attempt)
    assert [(r.attempt, r.state) for r in runs] == [
        (1, RunState.FAILED),
        (2, RunState.SUCCEEDED),
    ]
    assert runs[0].error
    assert {r.scheduled_for for r in runs} == {AT3}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_run_past_its_timeout_ends_timed_out(
    kind: str, store: Store, clock: Any, tmp_path: Path, http_base: str
) -> None:
    clock.set(T0)
    make_service(store, clock).create_job(
        {
            **target(kind, "slow", http_base),
            "cron": "0 3 * * *",
            "timeout": "1s",
            "kill_grace": "1s",
        },
        job_id="slow",
        actor="t",
    )
    clock.set(AT3)
    await step(make_engine(store, clock, tmp_path))
    (run,) = store.list_runs(job_id="slow")
    assert run.state is RunState.TIMED_OUT
    assert "timed out" in (run.error or "")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_fire_time_that_finds_the_previous_run_still_running_is_skipped(
    kind: str, store: Store, clock: Any, tmp_path: Path, http_base: str
) -> None:
    clock.set(T0)
    engine, first = await first_run_running(store, clock, tmp_path, target(kind, "slow", http_base))
    (second,) = await step(engine, wait=False)
    for _ in range(500):
        if store.get_run(second.id).state.final:
            break
        await asyncio.sleep(0.01)
    skipped = store.get_run(second.id)
    assert skipped.state is RunState.SKIPPED
    assert skipped.error == f"previous run {first.id} still running (overlap = skip)"
    engine.accepting = False
    engine.cancel_local(first.id, "cancelled")
    await settle(engine)
    assert store.get_run(first.id).state is RunState.CANCELLED
