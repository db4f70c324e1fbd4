"""Bearer tokens with scopes, anonymous access on loopback, and the bind check.

Scopes are ordered: `read` reads everything; `operate` also pauses, resumes,
triggers, cancels and backfills; `admin` also creates, changes and deletes
jobs (every kind: commands, Python calls, HTTP requests and workflows all
make the server act on the admin's behalf).

Without a token, a request is anonymous. Anonymous requests are allowed, as
admin, only when the server listens on a loopback address AND no token has
ever been created in the store AND the request comes from this machine
(`from_this_machine`): a fresh local install works without setup, and
creating the first token switches anonymous access off for good.
`check_bind_safety` is what keeps a server without tokens off the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, cast
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clocktower.api.context import AppContext, get_ctx
from clocktower.api.errors import ApiError
from clocktower.api.schemas import Scope
from clocktower.api.tokens import SCOPES, hash_token
from clocktower.store import Store, TokenInfo

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
    """The active token with this hash, as a principal; notes its use. The
    lookup is cached like the API's answers (see `clocktower.api.cache`): a
    token revoked by another process is refused within the cache's lag."""
    token = ctx.tokens.get_or_build(("token", digest), lambda: ctx.store.token_by_hash(digest))
    if token is None or token.scope not in SCOPES:
        return None
    if _needs_touch(ctx, token):
        now = ctx.now()
        ctx.store.touch_token(token.id, now=now)
        ctx.touched[token.id] = now
    return Principal(token.name, cast(Scope, token.scope))


def _needs_touch(ctx: AppContext, token: TokenInfo) -> bool:
    """Whether the token's last use is older than `TOUCH_EVERY`, by the store
    or by this process's own notes: the cached lookup may predate the last
    touch for as long as the cache lags."""
    last = max(
        (t for t in (token.last_used_at, ctx.touched.get(token.id)) if t is not None),
        default=None,
    )
    return last is None or ctx.now() - last > TOUCH_EVERY


def known_principal(ctx: AppContext, digest: str) -> Principal | None:
    """The principal for a token hash when memory alone can tell (looked up
    since the store last changed, and its use noted lately); None: ask the
    store (`principal_for_digest`, in a worker thread). An unknown or revoked
    token found in memory is refused here."""
    found = ctx.tokens.peek(("token", digest))
    if found is None:
        return None
    token = found[0]
    if token is None or token.scope not in SCOPES:
        raise ApiError("unauthorized", "the token is not valid (unknown or revoked)")
    if _needs_touch(ctx, token):
        return None
    return Principal(token.name, cast(Scope, token.scope))


def authenticate(ctx: AppContext, secret: str | None, *, local: bool) -> Principal:
    """The caller: its token's principal, or anonymous where that is allowed
    (`local`: the request passed `from_this_machine`)."""
    if secret:
        principal = principal_for_digest(ctx, hash_token(secret))
        if principal is None:
            raise ApiError("unauthorized", "the token is not valid (unknown or revoked)")
        return principal
    if local and ctx.anonymous_allowed():
        return ANONYMOUS
    raise ApiError("unauthorized", "this needs a token: send 'Authorization: Bearer <token>'")


def from_this_machine(request: Request) -> bool:
    """Whether a request without a token may act anonymously. It must name a
    loopback host (a page using DNS rebinding names its own domain), and when
    a browser says which page sent it, that page must be this server's: a
    site the user visits cannot make the browser act on a local server."""
    host = request.headers.get("host", "")
    name = urlsplit(f"//{host}").hostname or ""
    if name != "localhost":
        try:
            if not ipaddress.ip_address(name).is_loopback:
                return False
        except ValueError:
            return False
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != host:
        return False
    return request.headers.get("sec-fetch-site") not in ("cross-site", "same-site")


def forbid_unless(principal: Principal, needed: Scope, what: str) -> None:
    if not principal.allows(needed):
        raise ApiError(
            "forbidden",
            f"{what} needs the {needed} scope; token {principal.name!r} has {principal.scope}",
        )


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require(needed: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold at least `needed`."""

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        ctx = get_ctx(request)
        secret = credentials.credentials if credentials else None
        principal = known_principal(ctx, hash_token(secret)) if secret else None
        if principal is None:
            local = from_this_machine(request)
            principal = await ctx.read(lambda: authenticate(ctx, secret, local=local))
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
