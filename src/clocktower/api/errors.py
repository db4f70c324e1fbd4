"""Errors as JSON: `{"error": {"code": ..., "message": ..., "field": ...}}`.

The codes are stable (clients branch on them); the messages are for people
and come from the same validation the CLI and the config file use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clocktower.model import Conflict, InvalidSpec, JobNotFound, RunNotFound

log = logging.getLogger("clocktower.api")

# code -> the HTTP status it comes with (documented in docs/api.md)
CODES: dict[str, int] = {
    "invalid_request": 422,  # the request's shape: a parameter or body field of the wrong type
    "invalid_spec": 422,  # a job definition or operation that Clocktower's rules refuse
    "unauthorized": 401,  # no token, or not a valid one
    "forbidden": 403,  # the token's scope does not allow the operation
    "job_not_found": 404,
    "run_not_found": 404,
    "artifact_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "job_exists": 409,  # POST of an existing id with another definition (use PUT)
    "trigger_refused": 409,  # the job's overlap policy (or a broken definition) forbids it now
    "conflict": 409,
    "internal": 500,
    "store_unavailable": 503,  # the database did not answer
}


class ApiError(Exception):
    """An error answered as JSON with a stable code."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status or CODES[code]


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(error: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(
        error_body(error.code, error.message, error.field),
        status_code=error.status,
        headers=headers,
    )


def from_exception(exc: Exception) -> ApiError | None:
    """The API error for one of Clocktower's own exceptions."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InvalidSpec):
        return ApiError("invalid_spec", str(exc) if exc.job else exc.message, field=exc.field)
    if isinstance(exc, JobNotFound):
        return ApiError("job_not_found", str(exc), field="job")
    if isinstance(exc, RunNotFound):
        return ApiError("run_not_found", str(exc), field="run")
    if isinstance(exc, Conflict):
        return ApiError("conflict", str(exc))
    if isinstance(exc, DataError):
        return ApiError(
            "invalid_request",
            "the request holds a value the database cannot use (a NUL character?)",
        )
    if isinstance(exc, OperationalError | ProgrammingError):
        first = str(exc.orig or exc).strip().splitlines()
        return ApiError(
            "store_unavailable", f"the store did not answer: {first[0] if first else ''}"
        )
    return None


def _field(loc: Sequence[int | str]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or None


def validation_error(exc: RequestValidationError) -> ApiError:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = _field(first.get("loc", ()))
    message = str(first.get("msg", "invalid request"))
    return ApiError("invalid_request", f"{field}: {message}" if field else message, field=field)


_STATUS_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


PageRenderer = Callable[[Request, ApiError], Response]
MACHINE_PATHS = ("/api/", "/status/", "/healthz", "/readyz", "/metrics")


def install(app: FastAPI, page: PageRenderer | None = None) -> None:
    """Answer every error, expected or not, in the one JSON shape; errors of
    the dashboard's pages are rendered by `page` when given."""

    def answer(request: Request, error: ApiError) -> Response:
        if page is not None and not request.url.path.startswith(MACHINE_PATHS):
            return page(request, error)
        return error_response(error)

    async def on_clocktower(request: Request, exc: Exception) -> Response:
        error = from_exception(exc) or ApiError("internal", "internal error")
        return answer(request, error)

    async def on_validation(request: Request, exc: Exception) -> Response:
        return answer(request, validation_error(cast(RequestValidationError, exc)))

    async def on_http(request: Request, error: Exception) -> Response:
        exc = cast(StarletteHTTPException, error)
        # Anything else is a request that could not be read (a body that is
        # not JSON): the same 422 invalid_request as one of the wrong shape.
        code = _STATUS_CODES.get(exc.status_code, "invalid_request")
        status = exc.status_code if exc.status_code in _STATUS_CODES else 422
        response = answer(request, ApiError(code, str(exc.detail), status=status))
        response.headers.update(exc.headers or {})
        return response

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, ApiError("internal", "internal error; see the server's log"))

    for kind in (
        ApiError,
        InvalidSpec,
        JobNotFound,
        RunNotFound,
        Conflict,
        OperationalError,
        ProgrammingError,
        DataError,
    ):
        app.add_exception_handler(kind, on_clocktower)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
