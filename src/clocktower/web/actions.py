"""The dashboard's forms: log in and out, pause, resume, trigger, backfill and
cancel. Each checks the CSRF token and the session's scope, calls the service
with the token's name as the actor, and goes back to the page it came from
with a message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from clocktower.api.auth import Principal, forbid_unless
from clocktower.api.context import get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.schemas import Scope
from clocktower.model import ClocktowerError, Conflict, InvalidSpec
from clocktower.triggers.localtime import load_zone
from clocktower.web.render import flash, render
from clocktower.web.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    check_csrf,
    login,
    safe_next,
    set_cookie,
    web_principal,
)

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str | None, Form()]
Next = Annotated[str | None, Form()]


def acting(request: Request, csrf: str | None, needed: Scope) -> Principal:
    """The logged-in principal behind a form post, allowed to do `needed`."""
    check_csrf(request, csrf)
    principal = web_principal(request)
    if principal is None:
        raise ApiError("unauthorized", "your session has ended: log in again")
    forbid_unless(principal, needed, "this button")
    return principal


def back(
    request: Request, target: str | None, default: str, message: str, ok: bool = True
) -> Response:
    response = RedirectResponse(safe_next(target, default), status_code=303)
    flash(request, response, message, ok=ok)
    return response


# --------------------------------------------------------------------------- login


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if web_principal(request) is not None and request.cookies.get(SESSION_COOKIE):
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", None, {"next": target})


@router.post("/login")
def login_submit(
    request: Request,
    token: Annotated[str, Form(max_length=500)],
    csrf: Csrf = None,
    next: Next = None,
) -> Response:
    check_csrf(request, csrf)
    result = login(get_ctx(request), token)
    if result is None:
        context = {
            "next": safe_next(next),
            "error": "That token is not valid (unknown or revoked).",
        }
        return render(request, "login.html", None, context, status=401)
    principal, cookie = result
    response = back(request, next, "/", f"Logged in as {principal.name} ({principal.scope}).")
    set_cookie(request, response, SESSION_COOKIE, cookie, SESSION_SECONDS)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Csrf = None) -> Response:
    check_csrf(request, csrf)
    response = back(request, "/login", "/login", "Logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --------------------------------------------------------------------------- jobs


def _job_action(
    request: Request, job_id: str, action: str, csrf: str | None, next: str | None
) -> Response:
    principal = acting(request, csrf, "operate")
    service = get_ctx(request).service
    default = f"/jobs/{job_id}"
    try:
        if action == "pause":
            service.pause(job_id, actor=principal.name)
            return back(request, next, default, f"Paused {job_id}.")
        if action == "resume":
            service.resume(job_id, actor=principal.name)
            return back(request, next, default, f"Resumed {job_id}.")
        run = service.trigger_now(job_id, actor=principal.name)
    except Conflict as exc:
        return back(request, next, default, str(exc), ok=False)
    return back(request, next, default, f"Started run {run.id} of {job_id}.")


@router.post("/jobs/{job_id}/pause")
def pause(request: Request, job_id: str, csrf: Csrf = None, next: Next = None) -> Response:
    return _job_action(request, job_id, "pause", csrf, next)


@router.post("/jobs/{job_id}/resume")
def resume(request: Request, job_id: str, csrf: Csrf = None, next: Next = None) -> Response:
    return _job_action(request, job_id, "resume", csrf, next)


@router.post("/jobs/{job_id}/trigger")
def trigger(request: Request, job_id: str, csrf: Csrf = None, next: Next = None) -> Response:
    return _job_action(request, job_id, "trigger", csrf, next)


def _instant(value: str, zone_name: str, field: str) -> datetime:
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidSpec(f"{value!r} is not a date and time", field=field) from None
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return local.replace(tzinfo=load_zone(zone_name)).astimezone(UTC)


@router.post("/jobs/{job_id}/backfill")
def backfill(
    request: Request,
    job_id: str,
    start: Annotated[str, Form(alias="from", max_length=64)],
    end: Annotated[str, Form(alias="to", max_length=64)],
    tz: Annotated[str, Form(max_length=64)] = "UTC",
    csrf: Csrf = None,
) -> Response:
    principal = acting(request, csrf, "operate")
    default = f"/jobs/{job_id}"
    try:
        runs = get_ctx(request).service.backfill(
            job_id, _instant(start, tz, "from"), _instant(end, tz, "to"), actor=principal.name
        )
    except ClocktowerError as exc:
        if not isinstance(exc, InvalidSpec | Conflict):
            raise
        return back(request, default, default, str(exc), ok=False)
    return back(request, default, default, f"Backfill queued: {len(runs)} run(s).")


# --------------------------------------------------------------------------- runs


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: int, csrf: Csrf = None, next: Next = None) -> Response:
    principal = acting(request, csrf, "operate")
    run = get_ctx(request).service.cancel(run_id, actor=principal.name)
    message = f"Run {run_id} is {run.state}." if run.state.final else f"Asked run {run_id} to stop."
    return back(request, next, f"/runs/{run_id}", message)
