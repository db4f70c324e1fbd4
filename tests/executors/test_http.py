"""HTTP targets against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import quote

import pytest

from clocktower.executors.base import FireContext, Outcome
from clocktower.executors.http import MAX_OUTPUT, HttpExecutor
from clocktower.model import HttpTarget, RunState

from .conftest import HttpServer, MakeFire, RecordingSink


async def run(target: HttpTarget, fire: FireContext, sink: RecordingSink) -> Outcome:
    return await HttpExecutor().execute(target, fire, sink, timeout=10, kill_grace=1)


def json_url(server: HttpServer, body: Any) -> str:
    return server.at("/json?body=" + quote(json.dumps(body)))


# --------------------------------------------------------------------------- request


async def test_headers_expand_server_variables(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CT_TEST_SECRET", "s3cret")
    target = HttpTarget(
        http_server.at("/ok"), headers={"Authorization": "Bearer ${CT_TEST_SECRET}"}
    )
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    headers = http_server.requests[0].headers
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["user-agent"].startswith("clocktower/")


async def test_the_url_expands_server_variables(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CT_TEST_PATH", "ok")
    outcome = await run(HttpTarget(http_server.url + "/${CT_TEST_PATH}"), fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert http_server.requests[0].path == "/ok"


async def test_an_unset_variable_fails_permanently(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CT_TEST_UNSET", raising=False)
    target = HttpTarget(http_server.at("/ok"), headers={"Authorization": "${CT_TEST_UNSET}"})
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
    assert outcome.error == (
        "environment variable 'CT_TEST_UNSET' is not set on the server "
        "(used in header 'Authorization')"
    )
    assert http_server.requests == []


async def test_the_targets_headers_replace_the_context_headers(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    target = HttpTarget(http_server.at("/ok"), headers={"idempotency-key": "mine"})
    await run(target, fire, sink)
    assert http_server.requests[0].headers["idempotency-key"] == "mine"


async def test_json_body(fire: FireContext, sink: RecordingSink, http_server: HttpServer) -> None:
    target = HttpTarget(http_server.at("/ok"), method="post", json={"days": 7})
    await run(target, fire, sink)
    request = http_server.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"days": 7}


async def test_text_body(fire: FireContext, sink: RecordingSink, http_server: HttpServer) -> None:
    target = HttpTarget(http_server.at("/ok"), method="PUT", body="plain words")
    await run(target, fire, sink)
    assert http_server.requests[0].body == b"plain words"


@pytest.mark.parametrize(("method", "sent"), [("POST", True), ("GET", False)])
async def test_the_payload_is_the_body_when_there_is_none(
    make_fire: MakeFire,
    sink: RecordingSink,
    http_server: HttpServer,
    method: str,
    sent: bool,
) -> None:
    fire = make_fire(payload={"campaign": 12})
    await run(HttpTarget(http_server.at("/ok"), method=method), fire, sink)
    body = http_server.requests[0].body
    assert (json.loads(body) if body else None) == ({"campaign": 12} if sent else None)


async def test_the_targets_body_wins_over_the_payload(
    make_fire: MakeFire, sink: RecordingSink, http_server: HttpServer
) -> None:
    fire = make_fire(payload={"campaign": 12})
    await run(HttpTarget(http_server.at("/ok"), method="POST", body="mine"), fire, sink)
    assert http_server.requests[0].body == b"mine"


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (401, True),
        (404, True),
        (408, False),
        (425, False),
        (429, False),
        (500, False),
        (503, False),
    ],
)
async def test_which_failures_are_permanent(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer, status: int, permanent: bool
) -> None:
    outcome = await run(HttpTarget(http_server.at(f"/status/{status}")), fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.http_status == status
    assert outcome.permanent is permanent


async def test_expected_status(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    target = HttpTarget(http_server.at("/status/404"), expect_status=(404, 410))
    assert (await run(target, fire, sink)).state is RunState.SUCCEEDED
    target = HttpTarget(http_server.at("/ok"), expect_status=(204,))
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.error == "HTTP 200 OK (expected 204)"


async def test_redirects_are_not_followed(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await run(HttpTarget(http_server.at("/redirect")), fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.error == "HTTP 302 Found (expected 2xx)"
    assert [r.path for r in http_server.requests] == ["/redirect"]


# --------------------------------------------------------------------------- success field


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"success": True}, "success", None),
        ({"result": {"ok": True}}, "result.ok", None),
        ({"items": [{"ok": True}]}, "items.0.ok", None),
        ({"success": False}, "success", "response field 'success' is false, not true"),
        ({"success": "yes"}, "success", "response field 'success' is \"yes\", not true"),
        ({"result": {}}, "result.ok", "the response has no field 'result.ok'"),
        ([1], "success", "the response has no field 'success'"),
    ],
)
async def test_success_field(
    fire: FireContext,
    sink: RecordingSink,
    http_server: HttpServer,
    body: Any,
    field: str,
    error: str | None,
) -> None:
    outcome = await run(HttpTarget(json_url(http_server, body), success_field=field), fire, sink)
    assert outcome.error == error
    assert outcome.state is (RunState.SUCCEEDED if error is None else RunState.FAILED)
    assert not outcome.permanent
    assert outcome.http_status == 200


async def test_success_field_of_a_response_that_is_not_json(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    target = HttpTarget(http_server.at("/text?size=10"), success_field="success")
    outcome = await run(target, fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.error == "the response is not JSON: field 'success' cannot be checked"


# --------------------------------------------------------------------------- output


async def test_the_response_is_the_output_and_json_the_result(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await run(HttpTarget(http_server.at("/ok?say=hi")), fire, sink)
    assert outcome.result == {"success": True, "say": "hi"}
    assert sink.text("log") == ["HTTP 200 OK"]
    assert sink.text("stdout") == ['{"success": true, "say": "hi"}']


async def test_a_large_response_is_truncated(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await run(HttpTarget(http_server.at("/text?size=200000")), fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert outcome.result is None
    lines = sink.text("stdout")
    assert lines[-1] == f"[truncated: the response is longer than {MAX_OUTPUT} bytes]"
    assert sum(len(line) + 1 for line in lines[:-1]) <= MAX_OUTPUT + 1


async def test_head_request(
    fire: FireContext, sink: RecordingSink, http_server: HttpServer
) -> None:
    outcome = await run(HttpTarget(http_server.at("/ok"), method="HEAD"), fire, sink)
    assert outcome.state is RunState.SUCCEEDED
    assert sink.text("stdout") == []


# --------------------------------------------------------------------------- errors


async def test_connection_refused_is_retryable(fire: FireContext, sink: RecordingSink) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    outcome = await run(HttpTarget(f"http://127.0.0.1:{port}/"), fire, sink)
    assert outcome.state is RunState.FAILED
    assert not outcome.permanent
    assert outcome.error is not None
    assert outcome.error.startswith("request failed: ConnectError")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "not a url", "http://", "/relative/path", "http://[::1"]
)
async def test_invalid_urls_are_permanent(fire: FireContext, sink: RecordingSink, url: str) -> None:
    outcome = await run(HttpTarget(url), fire, sink)
    assert outcome.state is RunState.FAILED
    assert outcome.permanent
