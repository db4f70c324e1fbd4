"""Bearer tokens with scopes, anonymous access on loopback, and the bind check.

Scopes are ordered: `read` reads everything; `operate` also pauses, resumes,
triggers, cancels and backfills; `admin` also creates, changes and deletes
jobs (every kind: commands, Python calls, HTTP requests and workflows all
make the server act on the admin's behalf).

Without a token, a request is anonymous. Anonymous requests are allowed, as
admin, only when the server listens on a loopback address AND no token has
ever been created in the store: a fresh local install works without setup,
and creating the first token switches anonymous access off for good.
`check_bind_safety` is what keeps a server without tokens off the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clocktower.api.context import AppContext, get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.schemas import Scope
from clocktower.api.tokens import SCOPES, hash_token
from clocktower.store import Store

TOUCH_EVERY = timedelta(seconds=60)  # how often a token's last_used_at is written

bearer = HTTPBearer(auto_error=False, description="An API token: `clocktower tokens create`")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the token's name is the actor in the audit trail."""

    name: str
    scope: Scope
    anonymous: bool = False

    def allows(self, needed: Scope) -> bool:
        return allows(self.scope, needed)


ANONYMOUS = Principal("anonymous", "admin", anonymous=True)


def allows(have: str, needed: str) -> bool:
    return have in SCOPES and SCOPES.index(have) >= SCOPES.index(needed)


def principal_for_digest(ctx: AppContext, digest: str) -> Principal | None:
    """The active token with this hash, as a principal; notes its use."""
    token = ctx.store.token_by_hash(digest)
    if token is None or token.scope not in SCOPES:
        return None
    now = ctx.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ctx.store.touch_token(token.id, now=now)
    return Principal(token.name, token.scope)  # type: ignore[arg-type]


def authenticate(ctx: AppContext, secret: str | None) -> Principal:
    if secret:
        principal = principal_for_digest(ctx, hash_token(secret))
        if principal is None:
            raise ApiError("unauthorized", "the token is not valid (unknown or revoked)")
        return principal
    if ctx.anonymous_allowed():
        return ANONYMOUS
    raise ApiError("unauthorized", "this needs a token: send 'Authorization: Bearer <token>'")


def forbid_unless(principal: Principal, needed: Scope, what: str) -> None:
    if not principal.allows(needed):
        raise ApiError(
            "forbidden",
            f"{what} needs the {needed} scope; token {principal.name!r} has {principal.scope}",
        )


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require(needed: Scope) -> Callable[..., Principal]:
    """A dependency: the caller, who must hold at least `needed`."""

    def dependency(request: Request, credentials: Credentials) -> Principal:
        ctx = get_ctx(request)
        principal = authenticate(ctx, credentials.credentials if credentials else None)
        forbid_unless(principal, needed, "this operation")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("operate"))]
Admin = Annotated[Principal, Depends(require("admin"))]


# --------------------------------------------------------------------------- binding


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) only reaches this machine."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_bind_safety(store: Store, host: str) -> str | None:
    """Why serving on `host` would be unsafe, or None when it is fine: a server
    reachable from other machines needs at least one active token."""
    if is_loopback(host):
        return None
    if store.has_active_tokens():
        return None
    return (
        f"refusing to listen on {host}: no API token exists, so the API and dashboard "
        "would have no protection. Create one first (clocktower tokens create --scope "
        "admin --name NAME), or bind to 127.0.0.1"
    )
