"""Fixtures for the API tests: a service over each store, the app, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from clocktower.service import Service
from clocktower.store import Store
from tests.api.helpers import Tokens, app_for, client_for, make_tokens
from tests.conftest import FakeClock


@pytest.fixture
def service(store: Store, clock: FakeClock) -> Service:
    return Service(store, clock=clock)


@pytest.fixture
def app(service: Service) -> FastAPI:
    return app_for(service)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Anonymous (admin) while the store has no token."""
    async with client_for(app) as client:
        yield client


@pytest.fixture
def tokens(store: Store) -> Tokens:
    return make_tokens(store)
