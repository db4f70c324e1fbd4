"""HTTP targets: one request, judged by its status and, optionally, a JSON field.

`${VAR}` in the URL and in header values is read from the server's environment
at run time (`Authorization: Bearer ${CRON_SECRET}`). The fire context goes
along as headers (`Idempotency-Key`, `X-Clocktower-*`); the target's own
headers win over them. Redirects are not followed: a cron endpoint that
redirects to a login page has failed, not succeeded.

When the target has no body of its own and the run has a payload (a manual
trigger's), the payload is sent as the JSON body, except with GET and HEAD.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import httpx

from clocktower import __version__
from clocktower.executors._env import ExpansionError, expand, expand_env
from clocktower.executors._process import format_seconds
from clocktower.executors.base import FireContext, Outcome, OutputSink
from clocktower.model import HttpTarget, RunState, Target

MAX_OUTPUT = 64 * 1024  # bytes of the response written to the run's output
MAX_BODY = 1024 * 1024  # bytes read at most (to check `success_field`)
RETRYABLE_4XX = frozenset({408, 425, 429})  # timeout, too early, too many requests
NO_BODY_METHODS = frozenset({"GET", "HEAD"})


class _Permanent(Exception):
    """The request cannot be made as configured; retrying will not help."""


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    reason: str
    body: bytes
    complete: bool  # False: longer than MAX_BODY, cut there
    encoding: str


def _request_args(target: HttpTarget, ctx: FireContext) -> dict[str, Any]:
    """What to pass to `client.stream()`. Raises _Permanent."""
    try:
        url = httpx.URL(expand(target.url, os.environ, where="url"))
        configured = expand_env(target.headers, os.environ, what="header")
    except (ExpansionError, httpx.InvalidURL) as exc:
        raise _Permanent(str(exc)) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise _Permanent(f"unsupported URL {target.url!r}: expected http:// or https://HOST/...")
    headers = httpx.Headers({"User-Agent": f"clocktower/{__version__}", **ctx.as_headers()})
    headers.update(configured)  # case-insensitive: the target's headers replace ours
    method = target.method.upper()
    args: dict[str, Any] = {"method": method, "url": url, "headers": headers}
    if target.json is not None:
        args["json"] = target.json
    elif target.body is not None:
        args["content"] = target.body.encode()
    elif ctx.payload is not None and method not in NO_BODY_METHODS:
        args["json"] = ctx.payload
    return args


async def _fetch(args: dict[str, Any], time_limit: float) -> _Response:
    timeout = httpx.Timeout(time_limit)
    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        client.stream(**args) as response,
    ):
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                break
        return _Response(
            status=response.status_code,
            reason=response.reason_phrase,
            body=bytes(body[:MAX_BODY]),
            complete=len(body) <= MAX_BODY,
            encoding=response.charset_encoding or "utf-8",
        )


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def _write_body(response: _Response, sink: OutputSink) -> None:
    """The response body, capped at MAX_OUTPUT, as the run's output lines."""
    shown = response.body[:MAX_OUTPUT]
    lines = _decode(shown, response.encoding).splitlines()
    if len(response.body) > MAX_OUTPUT or not response.complete:
        lines.append(f"[truncated: the response is longer than {MAX_OUTPUT} bytes]")
    if lines:
        sink.write("stdout", "\n".join(lines))


def _status_problem(status: int, reason: str, expected: tuple[int, ...]) -> str | None:
    if status in expected or (not expected and 200 <= status < 300):
        return None
    wanted = ", ".join(map(str, expected)) if expected else "2xx"
    return f"{_status_line(status, reason)} (expected {wanted})"


def _status_line(status: int, reason: str) -> str:
    return f"HTTP {status} {reason}" if reason else f"HTTP {status}"


def _field_problem(response: _Response, path: str) -> str | None:
    """Why the JSON field at dotted `path` is not `true`, or None if it is."""
    if not response.complete:
        return f"the response is larger than {MAX_BODY} bytes: field {path!r} was not checked"
    try:
        value: Any = json.loads(response.body)
    except ValueError:
        return f"the response is not JSON: field {path!r} cannot be checked"
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return f"the response has no field {path!r}"
    if value is True:
        return None
    return f"response field {path!r} is {json.dumps(value)[:200]}, not true"


def _json_result(response: _Response) -> Any:
    """The parsed response when it is small JSON (a workflow's per-task result), else None."""
    if not response.complete or len(response.body) > MAX_OUTPUT:
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        return None


def _judge(target: HttpTarget, response: _Response) -> Outcome:
    status = response.status
    problem = _status_problem(status, response.reason, target.expect_status)
    if problem is not None:
        permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
        return Outcome(RunState.FAILED, http_status=status, error=problem, permanent=permanent)
    if target.success_field:
        problem = _field_problem(response, target.success_field)
        if problem is not None:
            return Outcome(RunState.FAILED, http_status=status, error=problem)
    return Outcome(RunState.SUCCEEDED, http_status=status, result=_json_result(response))


class HttpExecutor:
    kind = "http"

    async def execute(
        self,
        target: Target,
        ctx: FireContext,
        sink: OutputSink,
        *,
        timeout: float,  # noqa: ASYNC109 -- the Executor protocol names it
        kill_grace: float,
    ) -> Outcome:
        if not isinstance(target, HttpTarget):
            raise TypeError(f"HttpExecutor cannot run a {type(target).__name__}")
        timed_out = Outcome(RunState.TIMED_OUT, error=f"timed out after {format_seconds(timeout)}")
        try:
            args = _request_args(target, ctx)
        except _Permanent as exc:
            return Outcome.failed(str(exc), permanent=True)
        timer = asyncio.timeout(timeout)
        try:
            async with timer:
                response = await _fetch(args, timeout)
        except TimeoutError:
            if not timer.expired():
                raise
            return timed_out
        except httpx.TimeoutException:
            return timed_out
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, UnicodeEncodeError) as exc:
            return Outcome.failed(f"invalid request: {_describe(exc)}", permanent=True)
        except httpx.TransportError as exc:
            return Outcome.failed(f"request failed: {_describe(exc)}", permanent=False)
        sink.write("log", _status_line(response.status, response.reason))
        _write_body(response, sink)
        return _judge(target, response)


def _describe(exc: Exception) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
