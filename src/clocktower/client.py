"""A small client for applications that talk to a Clocktower server.

    from clocktower.client import Client

    ct = Client("http://127.0.0.1:8700", token=os.environ["CLOCKTOWER_TOKEN"])
    ct.schedule_once("campaign-42", at=send_at, url="https://app/campaigns/42/send",
                     method="POST")
    ct.reschedule("campaign-42", at=new_time)     # the campaign moved
    ct.cancel("campaign-42")                     # the campaign was deleted
    run = ct.trigger("nightly-report")
    run = ct.wait(run.id, timeout=600)

Synchronous (httpx). Errors are `ApiError`s carrying the server's stable code;
`NotFound`, `Conflict` and `Unauthorized` are the ones callers usually catch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

FINAL_STATES = frozenset(
    {"succeeded", "failed", "timed_out", "cancelled", "lost", "skipped", "missed"}
)


class ApiError(Exception):
    """The server refused: `code` is stable, `message` is for people."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Unauthorized(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
}


def _instant(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(at: datetime | str) -> str:
    if isinstance(at, str):
        return at
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone: pass an aware datetime")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RemoteJob:
    id: str
    paused: bool
    next_fire_at: datetime | None
    definition: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteJob:
        return cls(
            id=data["id"],
            paused=bool(data["paused"]),
            next_fire_at=_instant(data.get("next_fire_at")),
            definition=dict(data.get("definition") or {}),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class RemoteRun:
    id: int
    job_id: str
    state: str
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    raw: dict[str, Any]

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemoteRun:
        return cls(
            id=int(data["id"]),
            job_id=data["job_id"],
            state=data["state"],
            scheduled_for=_instant(data.get("scheduled_for")),
            started_at=_instant(data.get("started_at")),
            finished_at=_instant(data.get("finished_at")),
            error=data.get("error"),
            raw=data,
        )


class Client:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": response.text[:500] or response.reason_phrase}
        kind = _BY_STATUS.get(response.status_code, ApiError)
        raise kind(
            response.status_code,
            str(error.get("code")),
            str(error.get("message")),
            error.get("field"),
        )

    # ------------------------------------------------------------------ jobs

    def create_job(self, job_id: str, **definition: Any) -> RemoteJob:
        """Create a job; the same id and definition again is a no-op, another
        definition raises Conflict (use `put_job`)."""
        return RemoteJob.from_json(self._call("POST", "/jobs", json={"id": job_id, **definition}))

    def put_job(self, job_id: str, **definition: Any) -> RemoteJob:
        """Create or replace a job's whole definition."""
        return RemoteJob.from_json(self._call("PUT", f"/jobs/{job_id}", json=definition))

    def get_job(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_json(self._call("GET", f"/jobs/{job_id}"))

    def schedule_once(
        self,
        job_id: str,
        *,
        at: datetime | str,
        command: str | None = None,
        url: str | None = None,
        call: str | None = None,
        args: list[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RemoteJob:
        """Run something once at `at` (an aware datetime or ISO-8601 text). The
        same call again is harmless; use `reschedule` to move it."""
        target: dict[str, Any] = {}
        for key, value in (("command", command), ("url", url), ("call", call)):
            if value is not None:
                target[key] = value
        if args:
            target["args"] = list(args)
        if kwargs:
            target["kwargs"] = dict(kwargs)
        return self.create_job(job_id, **target, at=_iso(at), **fields)

    def reschedule(self, job_id: str, at: datetime | str) -> RemoteJob:
        """Move a one-off job to another instant (its other fields are kept)."""
        return RemoteJob.from_json(self._call("PATCH", f"/jobs/{job_id}", json={"at": _iso(at)}))

    def cancel(self, job_id: str) -> list[int]:
        """Delete a job: it will not fire; runs in progress are asked to stop.
        Returns the ids of those runs."""
        return list(self._call("DELETE", f"/jobs/{job_id}")["cancelled_runs"])

    def pause(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_json(self._call("POST", f"/jobs/{job_id}/pause"))

    def resume(self, job_id: str) -> RemoteJob:
        return RemoteJob.from_json(self._call("POST", f"/jobs/{job_id}/resume"))

    # ------------------------------------------------------------------ runs

    def trigger(
        self, job_id: str, *, payload: Any = None, env: Mapping[str, str] | None = None
    ) -> RemoteRun:
        """Run a job now. Raises Conflict when its overlap policy forbids it."""
        body: dict[str, Any] = {"payload": payload}
        if env:
            body["env"] = dict(env)
        return RemoteRun.from_json(self._call("POST", f"/jobs/{job_id}/trigger", json=body))

    def get_run(self, run_id: int) -> RemoteRun:
        return RemoteRun.from_json(self._call("GET", f"/runs/{run_id}"))

    def cancel_run(self, run_id: int) -> RemoteRun:
        return RemoteRun.from_json(self._call("POST", f"/runs/{run_id}/cancel"))

    def runs(self, job_id: str, *, limit: int = 50) -> list[RemoteRun]:
        data = self._call("GET", "/runs", params={"job": job_id, "limit": limit})
        return [RemoteRun.from_json(r) for r in data["runs"]]

    def wait(self, run_id: int, *, timeout: float | None = None, poll: float = 1.0) -> RemoteRun:
        """Wait until the run has ended and return it; TimeoutError after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get_run(run_id)
            if run.final:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run.state} after {timeout}s")
            pause = poll if deadline is None else min(poll, max(deadline - time.monotonic(), 0))
            time.sleep(pause)


__all__ = ["ApiError", "Client", "Conflict", "NotFound", "RemoteJob", "RemoteRun", "Unauthorized"]
