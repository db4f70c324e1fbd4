"""The OpenAPI document, and a schemathesis run against it on both stores:
whatever the generated requests, no answer is a 5xx, and answers match the
documented shapes."""

from __future__ import annotations

import contextlib

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (  # type: ignore[attr-defined]
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation

from clocktower.api.tokens import create_token
from clocktower.model import RunState
from clocktower.service import Service
from clocktower.store import Store
from tests.api.helpers import app_for, finished_run, new_run
from tests.conftest import FakeClock

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10  # per operation and mode: bounded, so the run stays short


def seeded_app(store: Store, clock: FakeClock) -> tuple[FastAPI, dict[str, str]]:
    """An app over a store holding jobs, runs, output and an artifact to hit,
    and the headers of an admin token (every operation is reachable)."""
    service = Service(store, clock=clock)
    service.create_job({"command": "x", "cron": "0 3 * * *"}, job_id="nightly", actor="t")
    service.create_job({"url": "https://example.com", "every": "1h"}, job_id="hook", actor="t")
    done = finished_run(service, "nightly", RunState.SUCCEEDED)
    store.append_output(done.id, [(0.0, "stdout", "hello")], cap=999)
    store.add_artifact(done.id, "a.txt", b"x", now=clock.now)
    new_run(service, "hook")
    admin = create_token(store, "fuzzer", "admin").secret
    return app_for(service), {"Authorization": f"Bearer {admin}"}


def fuzz(operation: APIOperation, mode: GenerationMode, headers: dict[str, str]) -> None:
    # A live stream ends with its run, and the seeded waiting run never ends:
    # keep what the stream sent in its first moments.
    timeout = 0.3 if operation.path.endswith("/stream") else 10

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=timeout)

    if mode is GenerationMode.POSITIVE:
        run()
        return
    with contextlib.suppress(Unsatisfiable):  # nothing invalid to send (no parameters)
        run()


def test_no_generated_request_gets_a_server_error(store: Store, clock: FakeClock) -> None:
    app, headers = seeded_app(store, clock)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, headers)


async def test_the_openapi_document(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    assert document["info"]["title"] == "Clocktower"
    paths = set(document["paths"])
    assert {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/trigger",
        "/api/v1/runs/{run_id}/output/stream",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    assert not any(p.startswith(("/status", "/login", "/now")) for p in paths)
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    create = document["paths"]["/api/v1/jobs"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert "command" in body["properties"] and body["additionalProperties"] is False
    docs = await api.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
