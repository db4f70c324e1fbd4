"""serve_http on a real socket: the live output stream as a run goes, and a
clean stop while a stream is open."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from clocktower.api import serve_http
from clocktower.model import RunState
from clocktower.service import Service
from clocktower.store import RunResult
from tests.api.helpers import app_for, running_run


@pytest.fixture
async def server(service: Service) -> AsyncIterator[tuple[str, asyncio.Task[None]]]:
    service.create_job({"command": "x"}, job_id="live", actor="test")
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_http(
            service,
            None,
            host="127.0.0.1",
            port=0,
            on_ready=ready.set_result,
            app=app_for(service, stream_interval=0.02),
        )
    )
    url = await ready
    yield url, task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def next_event(lines: AsyncIterator[str]) -> tuple[str, dict[str, object]]:
    """The next `event:` of the stream (keep-alive comments and retry skipped)."""
    event, data = None, ""
    async for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data += line.removeprefix("data: ")
        elif line == "" and event is not None:
            return event, json.loads(data)
    raise AssertionError("the stream ended")


async def test_the_stream_follows_a_run_until_it_ends(
    server: tuple[str, asyncio.Task[None]], service: Service
) -> None:
    url, _ = server
    store = service.store
    run = running_run(service, "live")
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", f"/api/v1/runs/{run.id}/output/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        event, state = await next_event(lines)
        assert (event, state["state"], state["progress"]) == ("state", "running", None)

        await asyncio.to_thread(store.append_output, run.id, [(0.0, "stdout", "hello")], cap=999)
        event, chunk = await next_event(lines)
        assert (event, [line["text"] for line in chunk["lines"]]) == ("output", ["hello"])

        await asyncio.to_thread(store.set_progress, run.id, 4, 10)
        event, state = await next_event(lines)
        assert (event, state["progress"]) == ("state", {"done": 4, "total": 10, "percent": 40})

        await asyncio.to_thread(store.append_output, run.id, [(0.0, "stderr", "bye")], cap=999)
        outcome = RunResult(RunState.SUCCEEDED, exit_code=0)
        await asyncio.to_thread(
            store.finish, run.id, node="test-node", outcome=outcome, now=service.clock()
        )
        event, chunk = await next_event(lines)
        assert (event, chunk["lines"][0]["text"]) == ("output", "bye")
        assert (await next_event(lines))[1]["state"] == "succeeded"
        assert (await next_event(lines))[0] == "end"


async def test_stopping_the_server_ends_open_streams(
    server: tuple[str, asyncio.Task[None]], service: Service
) -> None:
    url, task = server
    run = running_run(service, "live")
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", f"/api/v1/runs/{run.id}/output/stream") as response,
    ):
        lines = response.aiter_lines()
        assert (await next_event(lines))[0] == "state"
        task.cancel()
        with pytest.raises(AssertionError, match="the stream ended"):
            await next_event(lines)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/healthz")
