"""Tokens, scopes, anonymous access on loopback, and the bind check."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi import FastAPI

from clocktower.api import check_bind_safety, is_loopback
from clocktower.api.context import CACHE_LAG
from clocktower.api.tokens import create_token, list_tokens, revoke_token
from clocktower.model import InvalidSpec
from clocktower.service import Service
from clocktower.store import Store
from tests.api.helpers import Tokens, app_for, bearer, client_for, new_run

SCOPES = ("read", "operate", "admin")

# Every route of the API with the scope it needs (the path's job is "nightly",
# its run is {run}). A scope below gets 403; the scope itself gets through.
ROUTES: list[tuple[str, str, str, object]] = [
    ("GET", "/api/v1/jobs", "read", None),
    ("GET", "/api/v1/jobs/nightly", "read", None),
    ("GET", "/api/v1/jobs/nightly/preview", "read", None),
    ("GET", "/api/v1/runs", "read", None),
    ("GET", "/api/v1/runs/{run}", "read", None),
    ("GET", "/api/v1/runs/{run}/output", "read", None),
    ("GET", "/api/v1/runs/{run}/artifacts", "read", None),
    ("GET", "/api/v1/runs/{run}/artifacts/a.txt", "read", None),
    ("GET", "/api/v1/nodes", "read", None),
    ("GET", "/api/v1/events", "read", None),
    ("GET", "/api/v1/whoami", "read", None),
    ("GET", "/metrics", "read", None),
    ("POST", "/api/v1/jobs/nightly/pause", "operate", None),
    ("POST", "/api/v1/jobs/nightly/resume", "operate", None),
    ("POST", "/api/v1/jobs/nightly/trigger", "operate", {}),
    (
        "POST",
        "/api/v1/jobs/nightly/backfill",
        "operate",
        {"from": "2025-01-01", "to": "2025-01-02"},
    ),
    ("POST", "/api/v1/runs/{run}/cancel", "operate", None),
    ("POST", "/api/v1/jobs", "admin", {"id": "other", "url": "https://example.com"}),
    ("PUT", "/api/v1/jobs/other", "admin", {"url": "https://example.com"}),
    ("PATCH", "/api/v1/jobs/nightly", "admin", {"retries": 2}),
    ("DELETE", "/api/v1/jobs/nightly", "admin", None),
]


@pytest.fixture
def locked_app(service: Service, tokens: Tokens) -> FastAPI:
    service.create_job({"command": "x", "cron": "0 3 * * *"}, job_id="nightly", actor="setup")
    return app_for(service)


@pytest.mark.parametrize(("method", "path", "needed", "body"), ROUTES)
async def test_every_route_needs_its_scope(
    locked_app: FastAPI,
    service: Service,
    tokens: Tokens,
    method: str,
    path: str,
    needed: str,
    body: object,
) -> None:
    run = new_run(service, "nightly")
    path = path.replace("{run}", str(run.id))
    kwargs = {"json": body} if body is not None else {}
    async with client_for(locked_app) as api:
        anonymous = await api.request(method, path, **kwargs)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "unauthorized"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        for scope in SCOPES:
            response = await api.request(method, path, headers=tokens.for_scope(scope), **kwargs)
            if SCOPES.index(scope) < SCOPES.index(needed):
                assert response.status_code == 403, (scope, response.text)
                error = response.json()["error"]
                assert error["code"] == "forbidden"
                assert f"needs the {needed} scope" in error["message"]
            else:
                assert response.status_code not in (401, 403), (scope, response.text)
                break  # the first allowed scope changed things; higher ones are allowed too


async def test_health_endpoints_need_no_token(locked_app: FastAPI) -> None:
    async with client_for(locked_app) as api:
        assert (await api.get("/healthz")).status_code == 200
        assert (await api.get("/readyz")).status_code == 200
        assert (await api.get("/api/v1/openapi.json")).status_code == 200


async def test_unknown_and_revoked_tokens_are_refused(
    service: Service, store: Store, tokens: Tokens
) -> None:
    ticks = [1000.0]
    app = app_for(service, cache_clock=lambda: ticks[0])
    async with client_for(app) as api:
        unknown = await api.get("/api/v1/jobs", headers=bearer("ct_not-a-token"))
        assert unknown.status_code == 401
        assert "not valid" in unknown.json()["error"]["message"]
        assert (await api.get("/api/v1/jobs", headers=tokens.read)).status_code == 200
        assert revoke_token(store, "read-bot")  # as `clocktower tokens revoke` does
        ticks[0] += CACHE_LAG  # refused within the cache's lag, however busy the store
        revoked = await api.get("/api/v1/jobs", headers=tokens.read)
        assert revoked.status_code == 401
        basic = await api.get("/api/v1/jobs", headers={"Authorization": "Basic abc"})
        assert basic.status_code == 401


async def test_changes_are_audited_with_the_token_name(
    locked_app: FastAPI, store: Store, tokens: Tokens
) -> None:
    async with client_for(locked_app) as api:
        await api.post("/api/v1/jobs/nightly/pause", headers=tokens.operate)
        await api.patch("/api/v1/jobs/nightly", json={"retries": 1}, headers=tokens.admin)
    actions = [(e.actor, e.action) for e in store.list_events(job_id="nightly", limit=2)]
    assert actions == [("admin-bot", "job.update"), ("operate-bot", "job.pause")]
    used = {t.name: t.last_used_at for t in list_tokens(store)}
    assert used["operate-bot"] is not None
    assert used["read-bot"] is None


async def test_environment_overrides_on_code_need_admin(
    locked_app: FastAPI, service: Service, tokens: Tokens
) -> None:
    service.create_job({"url": "https://example.com"}, job_id="hook", actor="setup")
    env = {"json": {"env": {"LD_PRELOAD": "/tmp/x.so"}}}
    async with client_for(locked_app) as api:
        refused = await api.post("/api/v1/jobs/nightly/trigger", headers=tokens.operate, **env)
        assert refused.status_code == 403
        assert "environment override" in refused.json()["error"]["message"]
        allowed = await api.post("/api/v1/jobs/hook/trigger", headers=tokens.operate, **env)
        assert allowed.status_code == 202
        admin = await api.post("/api/v1/jobs/nightly/trigger", headers=tokens.admin, **env)
        assert admin.status_code == 202


# --------------------------------------------------------------------------- anonymous


async def test_anonymous_is_admin_on_loopback_until_a_token_exists(
    service: Service, store: Store
) -> None:
    async with client_for(app_for(service, allow_anonymous=True)) as api:
        me = await api.get("/api/v1/whoami")
        assert me.json() == {"name": "anonymous", "scope": "admin", "anonymous": True}
        created = await api.post("/api/v1/jobs", json={"id": "a", "command": "x"})
        assert created.status_code == 201
        token = create_token(store, "first", "read")
        assert (await api.get("/api/v1/whoami")).status_code == 401
        revoke_token(store, "first")
        assert (await api.get("/api/v1/whoami")).status_code == 401  # never again
        assert token.secret


async def test_no_anonymous_access_off_loopback(service: Service) -> None:
    async with client_for(app_for(service, allow_anonymous=False)) as api:
        assert (await api.get("/api/v1/whoami")).status_code == 401


# --------------------------------------------------------------------------- tokens


def test_tokens_are_shown_once_and_stored_hashed(store: Store) -> None:
    token = create_token(store, "deploy", "operate")
    assert token.secret.startswith("ct_") and len(token.secret) > 40
    digest = hashlib.sha256(token.secret.encode()).hexdigest()
    found = store.token_by_hash(digest)
    assert found is not None and (found.name, found.scope) == ("deploy", "operate")
    (listed,) = list_tokens(store)
    assert not hasattr(listed, "hash") and token.secret not in repr(listed)
    other = create_token(store, "other", "read")
    assert other.secret != token.secret


def test_token_names_and_scopes_are_checked(store: Store) -> None:
    create_token(store, "deploy", "admin")
    with pytest.raises(InvalidSpec, match="already exists") as taken:
        create_token(store, "deploy", "read")
    assert taken.value.field == "name"
    with pytest.raises(InvalidSpec, match="unknown scope") as scope:
        create_token(store, "x", "root")
    assert scope.value.field == "scope"
    with pytest.raises(InvalidSpec, match="printable"):
        create_token(store, "  ", "read")


def test_revoke(store: Store) -> None:
    create_token(store, "deploy", "admin")
    assert revoke_token(store, "deploy") is True
    assert revoke_token(store, "deploy") is False
    assert revoke_token(store, "nobody") is False
    (listed,) = list_tokens(store)
    assert listed.revoked_at is not None


# --------------------------------------------------------------------------- binding


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_safety(store: Store) -> None:
    assert check_bind_safety(store, "127.0.0.1") is None
    refusal = check_bind_safety(store, "0.0.0.0")
    assert refusal is not None
    assert "no API token exists" in refusal and "clocktower tokens create" in refusal
    create_token(store, "ops", "admin")
    assert check_bind_safety(store, "0.0.0.0") is None
    revoke_token(store, "ops")
    assert check_bind_safety(store, "0.0.0.0") is not None


def test_anonymous_flag_follows_the_bind(service: Service) -> None:
    for host, expected in (("127.0.0.1", True), ("0.0.0.0", False)):
        app = app_for(service, allow_anonymous=is_loopback(host))
        assert app.state.ctx.allow_anonymous is expected


async def test_whoami_with_a_token(locked_app: FastAPI, tokens: Tokens) -> None:
    async with client_for(locked_app) as api:
        me = (await api.get("/api/v1/whoami", headers=tokens.operate)).json()
        assert me == {"name": "operate-bot", "scope": "operate", "anonymous": False}


async def test_a_bad_authorization_header_is_a_401(locked_app: FastAPI) -> None:
    async with client_for(locked_app) as api:
        for header in ("Bearer", "Bearer ", "Token abc", "bearer"):
            response = await api.get("/api/v1/jobs", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert isinstance(response, httpx.Response)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"Host": "localhost:8700"}, True),
        ({"Host": "[::1]:8700"}, True),
        ({"Host": "127.0.0.1:8700", "Origin": "http://127.0.0.1:8700"}, True),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Host": "rebound.evil.example:8700"}, False),  # DNS rebinding
        ({"Host": "10.1.2.3:8700"}, False),
        ({"Origin": "https://evil.example"}, False),  # another site's page
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),  # another local server's page
    ],
)
async def test_anonymous_requests_must_come_from_this_machine(
    service: Service, headers: dict[str, str], allowed: bool
) -> None:
    async with client_for(app_for(service, allow_anonymous=True)) as api:
        response = await api.post("/api/v1/jobs", json={"id": "a", "command": "x"}, headers=headers)
        assert (response.status_code == 201) is allowed, response.text
        page = await api.get("/", headers=headers)
        assert (page.status_code == 200) is allowed
