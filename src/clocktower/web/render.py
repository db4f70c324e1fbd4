"""Templates, the context every page shares, and the headers every page gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from clocktower import __version__
from clocktower.api.auth import Principal
from clocktower.api.context import get_ctx
from clocktower.api.errors import ApiError
from clocktower.web import present
from clocktower.web.session import (
    CSRF_COOKIE,
    FLASH_COOKIE,
    csrf_seed,
    csrf_token,
    set_cookie,
    web_principal,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
env = templates.env
env.auto_reload = False  # templates ship with the package; no stat() per render
env.filters.update(
    absolute=present.absolute,
    duration=present.duration,
    percent=present.percent,
    badge=present.badge,
    state_class=present.state_class,
)
env.globals.update(
    version=__version__,
    output_lines=present.output_lines,
    history_chart=present.history_chart,
    page_query=present.page_query,
)

# No inline script or style anywhere: the dashboard works under a strict policy.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def base_context(request: Request, principal: Principal | None) -> dict[str, Any]:
    ctx = get_ctx(request)
    now = ctx.now()
    return {
        "request": request,
        "me": principal,
        "can_operate": principal is not None and principal.allows("operate"),
        "can_admin": principal is not None and principal.allows("admin"),
        "csrf": csrf_token(request),
        "now": now,
        "when": lambda value: present.when(value, now),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "flash": read_flash(request),
    }


def finish(request: Request, response: Response) -> Response:
    """Headers and cookies every dashboard response gets."""
    response.headers.update(SECURITY_HEADERS)
    seed, new = csrf_seed(request)
    if new:
        set_cookie(request, response, CSRF_COOKIE, seed, 30 * 86400)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> Response:
    data = {**base_context(request, principal), **context}
    response = templates.TemplateResponse(request, name, data, status_code=status)
    return finish(request, response)


def render_shared(
    request: Request, name: str, principal: Principal, context: dict[str, Any]
) -> str:
    """A page as text that other requests may be answered with: no flash
    message, and `context` gives the stand-ins for what is the viewer's own
    (the CSRF token)."""
    data = {**base_context(request, principal), "flash": None, **context}
    return env.get_template(name).render(data)


def fragments(
    request: Request, principal: Principal, parts: dict[str, str], context: dict[str, Any]
) -> dict[str, str]:
    """Partial templates rendered to HTML, by the id of the element they replace."""
    data = {**base_context(request, principal), **context}
    return {key: env.get_template(name).render(data) for key, name in parts.items()}


# --------------------------------------------------------------------------- flash


def flash(request: Request, response: Response, message: str, *, ok: bool = True) -> None:
    """A message for the next page (after a redirect)."""
    set_cookie(request, response, FLASH_COOKIE, quote(("ok:" if ok else "err:") + message), 60)


def read_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, message = unquote(raw).partition(":")
    return {"ok": kind == "ok", "message": message[:500]}


# --------------------------------------------------------------------------- errors


def error_page(request: Request, error: ApiError) -> Response:
    """How the dashboard answers an error: the login page when not logged in."""
    if error.code == "unauthorized" and request.method == "GET":
        # A page, not a redirect: SameSite=Strict cookies are not sent on a
        # navigation that came from another site (a link in a chat message),
        # but they are on this same-site hop, so a logged-in user goes
        # straight through /login to the page.
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        response = render(
            request, "relogin.html", None, {"target": f"/login?next={target}"}, status=401
        )
        return response
    status = error.status if error.status != 401 else 403
    try:
        principal = web_principal(request)
    except Exception:  # the store may be the problem
        principal = None
    context = {"error": error, "status": status}
    return render(request, "error.html", principal, context, status=status)
