"""Fixtures for the dashboard tests: an app whose store has tokens, and a way
to log in through the login form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from clocktower.service import Service
from clocktower.store import Store
from tests.api.helpers import Tokens, app_for, client_for, make_tokens
from tests.conftest import FakeClock

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def service(store: Store, clock: FakeClock) -> Service:
    service = Service(store, clock=clock)
    service.create_job(
        {"command": "echo hi", "cron": "0 3 * * *", "description": "the nightly cleanup"},
        job_id="nightly",
        actor="setup",
    )
    return service


@pytest.fixture
def tokens(store: Store) -> Tokens:
    return make_tokens(store)


@pytest.fixture
def app(service: Service, tokens: Tokens) -> FastAPI:
    return app_for(service)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, like a browser; not logged in."""
    async with client_for(app) as client:
        yield client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, secret: str, next: str = "/") -> httpx.Response:
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"token": secret, "csrf": csrf_of(page.text), "next": next}
    )
    assert response.status_code == 303, response.text
    return response


async def form_post(
    client: httpx.AsyncClient, page: str, action: str, **fields: str
) -> httpx.Response:
    """Submit a form the way the page would: with the page's CSRF token."""
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf": csrf_of(html), "next": page, **fields})
