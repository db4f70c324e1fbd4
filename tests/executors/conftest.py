"""Fixtures for the executor tests: a recording sink, fire contexts and a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from clocktower.executors.base import FireContext, Stream
from clocktower.model import TriggerKind

SCHEDULED_FOR = datetime(2024, 3, 10, 3, 0, tzinfo=UTC)
WAIT = 10.0  # seconds a test waits for something that should happen at once


class RecordingSink:
    """An OutputSink that keeps everything, and checks it is only called on the loop thread."""

    def __init__(self) -> None:
        self.lines: list[tuple[Stream, str]] = []
        self.progress_updates: list[tuple[float, float | None]] = []
        self.threads: set[int] = set()
        self._changed = asyncio.Event()

    def write(self, stream: Stream, text: str) -> None:
        self.threads.add(threading.get_ident())
        self.lines.extend((stream, line) for line in text.split("\n"))
        self._changed.set()

    def progress(self, done: float, total: float | None) -> None:
        self.threads.add(threading.get_ident())
        self.progress_updates.append((done, total))
        self._changed.set()

    def text(self, *streams: Stream) -> list[str]:
        return [line for stream, line in self.lines if not streams or stream in streams]

    async def wait_for(self, predicate: Callable[[RecordingSink], bool]) -> None:
        """Until `predicate(self)` holds; at most WAIT seconds, so a broken test cannot hang."""
        async with asyncio.timeout(WAIT):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_line(self, needle: str) -> str:
        await self.wait_for(lambda sink: any(needle in line for line in sink.text()))
        return next(line for line in self.text() if needle in line)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


MakeFire = Callable[..., FireContext]


@pytest.fixture
def make_fire(tmp_path: Path) -> MakeFire:
    def make(**changes: Any) -> FireContext:
        values: dict[str, Any] = {
            "job_id": "nightly",
            "run_id": 42,
            "attempt": 2,
            "scheduled_for": SCHEDULED_FOR,
            "idempotency_key": "nightly:20240310T030000.000000Z",
            "trigger": TriggerKind.RETRY,
            "artifacts_dir": tmp_path / "artifacts" / "42",
        }
        values.update(changes)
        return FireContext(**values)

    return make


@pytest.fixture
def fire(make_fire: MakeFire) -> FireContext:
    return make_fire()


# --------------------------------------------------------------------------- HTTP server


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class HttpServer:
    """A real server on 127.0.0.1. Paths:

    /ok?say=TEXT          200, JSON {"success": true, "say": TEXT}
    /status/CODE          that status, body "status CODE"
    /json?body=JSON       200 with the given JSON body
    /text?size=N          200 with N bytes of text (lines of 99 'x')
    /redirect             302 to /ok
    /slow                 waits until released (test end), then 200
    """

    url: str
    requests: list[Recorded] = field(default_factory=list)
    slow_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def at(self, path: str) -> str:
        return self.url + path


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        state.requests.append(Recorded(self.command, parts.path, headers, body))
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        status, content, content_type = self._route(parts.path, query, state)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", state.at("/ok"))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def _route(self, path: str, query: dict[str, str], state: HttpServer) -> tuple[int, bytes, str]:
        if path == "/ok":
            return (
                200,
                json.dumps({"success": True, "say": query.get("say")}).encode(),
                "application/json",
            )
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return code, f"status {code}".encode(), "text/plain"
        if path == "/json":
            return 200, query["body"].encode(), "application/json"
        if path == "/text":
            size = int(query["size"])
            line = b"x" * 99 + b"\n"
            return 200, (line * (size // 100 + 1))[:size], "text/plain; charset=utf-8"
        if path == "/redirect":
            return 302, b"", "text/plain"
        if path == "/slow":
            state.slow_started.set()
            state.release.wait(30)
            return 200, b"finally", "text/plain"
        return 404, b"no such path", "text/plain"

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    state: HttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that gave up (timeouts, cancellations) are expected here


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    server.state = HttpServer(url=f"http://{host!s}:{port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.state
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()
