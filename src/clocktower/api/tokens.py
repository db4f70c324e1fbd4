"""API tokens: created with a scope, shown once, stored as a SHA-256 hash.

The CLI's `clocktower tokens create|list|revoke` calls these. A token's secret
is 32 random bytes (URL-safe base64) behind a `ct_` prefix, so it is easy to
recognise in a leaked config; only its hash is kept, so a copy of the
database does not hand out access.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from clocktower.model import InvalidSpec
from clocktower.store import Store, TokenInfo

SCOPES = ("read", "operate", "admin")
PREFIX = "ct_"


@dataclass(frozen=True, slots=True)
class NewToken:
    name: str
    scope: str
    secret: str  # shown once; only its hash is stored


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidSpec(f"unknown scope {scope!r}: use read, operate or admin", field="scope")
    return scope


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 255 or not name.isprintable():
        raise InvalidSpec(
            "a token's name is 1 to 255 printable characters (it is the actor "
            "written to the audit trail)",
            field="name",
        )
    return name


def create_token(store: Store, name: str, scope: str, *, now: datetime | None = None) -> NewToken:
    """Create a token; its secret is in the result and nowhere else."""
    name, scope = check_name(name), check_scope(scope)
    secret = PREFIX + secrets.token_urlsafe(32)
    try:
        store.add_token(
            name=name, digest=hash_token(secret), scope=scope, now=now or datetime.now(UTC)
        )
    except IntegrityError:
        raise InvalidSpec(
            f"a token named {name!r} already exists (names stay taken after revoking)",
            field="name",
        ) from None
    return NewToken(name=name, scope=scope, secret=secret)


def list_tokens(store: Store) -> list[TokenInfo]:
    """Every token, revoked ones included (their `revoked_at` is set)."""
    return store.list_tokens()


def revoke_token(store: Store, name: str, *, now: datetime | None = None) -> bool:
    """Revoke a token at once. False when no active token has that name."""
    return store.revoke_token(name, now=now or datetime.now(UTC))


__all__ = [
    "SCOPES",
    "NewToken",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
]
