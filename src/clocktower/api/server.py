"""Serve the app with uvicorn beside the scheduler loop, in the same event loop.

The node owns the signals (SIGTERM drains running work); this server installs
no handlers of its own and stops when its task is cancelled: it stops
accepting, ends live output streams, lets requests in flight finish (a few
seconds at most) and closes its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from clocktower.api.app import create_app
from clocktower.api.auth import is_loopback
from clocktower.engine import Loop
from clocktower.service import Service

log = logging.getLogger("clocktower.http")

GRACE = 5  # seconds requests in flight get at shutdown


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the process's signals alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn before 0.29
        return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port). Raises OSError with the address."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve_http(
    service: Service,
    loop: Loop | None,
    *,
    host: str,
    port: int,
    session_secret: bytes | None = None,
    on_ready: Callable[[str], None] | None = None,
    app: FastAPI | None = None,
) -> None:
    """Serve the API, the dashboard, /healthz, /readyz and /metrics until cancelled.

    Anonymous admin access is allowed only when `host` is a loopback address
    and the store has never had a token; call `check_bind_safety` before this
    to refuse a network bind without tokens. `on_ready` gets the base URL once
    the socket listens (useful with port 0). `app` replaces the app this
    would create (tests and benchmarks use it to tune the app)."""
    if app is None:
        app = create_app(
            service, loop, allow_anonymous=is_loopback(host), session_secret=session_secret
        )
    sock = bind(host, port)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACE
    )
    server = _Server(config)
    url = base_url(sock)
    log.info("API and dashboard on %s", url)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    if on_ready is not None:
        on_ready(url)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        app.state.ctx.stopping.set()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, GRACE + 5)
        raise
    finally:
        sock.close()
