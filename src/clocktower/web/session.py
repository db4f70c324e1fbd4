"""The dashboard's session and CSRF protection.

Login exchanges an API token for a session cookie (`ct_session`): the token's
SHA-256 hash and an expiry, signed with HMAC-SHA256. The cookie is HttpOnly
and SameSite=Strict (Secure over HTTPS). Each request looks the token up
again, so revoking it ends its sessions at once. The signing key is random per
process unless the app is given one, so a restart signs everyone out.

Every form carries a CSRF token: an HMAC of a random `ct_csrf` cookie. A POST
is refused unless the form's token matches the cookie it came with, and (when
the browser says where it came from) its Origin is this server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlsplit

from fastapi import Request, Response

from clocktower.api.auth import ANONYMOUS, Principal, from_this_machine, principal_for_digest
from clocktower.api.context import AppContext, get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.tokens import hash_token

SESSION_COOKIE = "ct_session"
CSRF_COOKIE = "ct_csrf"
FLASH_COOKIE = "ct_flash"
SESSION_SECONDS = 12 * 3600


def _sign(ctx: AppContext, text: str) -> str:
    mac = hmac.new(ctx.session_secret, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def session_value(ctx: AppContext, digest: str, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_SECONDS)
    payload = base64.urlsafe_b64encode(json.dumps({"d": digest, "e": expires}).encode()).decode()
    return f"{payload}.{_sign(ctx, 'session|' + payload)}"


def read_session(ctx: AppContext, value: str | None, *, now: float | None = None) -> str | None:
    """The token hash a valid, unexpired session cookie carries."""
    if not value or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac, _sign(ctx, "session|" + payload)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        digest, expires = str(data["d"]), float(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    return digest if expires > (now or time.time()) else None


def web_principal(request: Request) -> Principal | None:
    """Who is looking at the dashboard: the session's token, or anonymous
    when the server allows it; None means: log in."""
    ctx = get_ctx(request)
    digest = read_session(ctx, request.cookies.get(SESSION_COOKIE))
    if digest is not None:
        principal = principal_for_digest(ctx, digest)
        if principal is not None:
            return principal
    return ANONYMOUS if from_this_machine(request) and ctx.anonymous_allowed() else None


def login(ctx: AppContext, secret: str) -> tuple[Principal, str] | None:
    """The principal and session cookie value for a token, if it is valid."""
    digest = hash_token(secret.strip())
    principal = principal_for_digest(ctx, digest)
    if principal is None:
        return None
    return principal, session_value(ctx, digest)


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name, value, max_age=age, path="/", httponly=True, samesite="strict", secure=secure(request)
    )


# --------------------------------------------------------------------------- CSRF


def csrf_seed(request: Request) -> tuple[str, bool]:
    """The request's CSRF cookie, or a new one (True: set it on the response)."""
    seed = request.cookies.get(CSRF_COOKIE)
    if seed and 20 <= len(seed) <= 100:
        return seed, False
    cached = getattr(request.state, "csrf_seed", None)
    if cached:
        return str(cached), True
    seed = secrets.token_urlsafe(32)
    request.state.csrf_seed = seed
    return seed, True


def csrf_token(request: Request) -> str:
    seed, _ = csrf_seed(request)
    return _sign(get_ctx(request), "csrf|" + seed)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form post that did not come from one of this server's pages."""
    seed = request.cookies.get(CSRF_COOKIE)
    expected = _sign(get_ctx(request), "csrf|" + seed) if seed else None
    if not submitted or expected is None or not hmac.compare_digest(submitted, expected):
        raise ApiError("forbidden", "the form has expired or did not come from this server (CSRF)")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError("forbidden", f"cross-site form post from {origin} refused (CSRF)")


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
