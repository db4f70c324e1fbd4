"""/api/v1/runs on both stores: listing, cursor, cancel, output, the stream, artifacts."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from clocktower.model import RunState, TriggerKind
from clocktower.service import Service
from clocktower.store import NewRun, RunResult
from tests.api.helpers import finished_run, new_run, running_run
from tests.conftest import FakeClock


async def add_job(api: httpx.AsyncClient, job_id: str = "nightly") -> None:
    response = await api.post(
        "/api/v1/jobs", json={"id": job_id, "command": "x", "cron": "0 3 * * *"}
    )
    assert response.status_code == 201


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_list_is_newest_first_with_a_cursor(api: httpx.AsyncClient, service: Service) -> None:
    await add_job(api)
    ids = [new_run(service, "nightly").id for _ in range(5)]
    first = (await api.get("/api/v1/runs", params={"job": "nightly", "limit": 2})).json()
    assert [r["id"] for r in first["runs"]] == ids[:-3:-1]
    assert first["next_before"] == ids[3]
    second = (
        await api.get("/api/v1/runs", params={"job": "nightly", "limit": 2, "before": ids[3]})
    ).json()
    assert [r["id"] for r in second["runs"]] == [ids[2], ids[1]]
    rest = (
        await api.get("/api/v1/runs", params={"job": "nightly", "limit": 2, "before": ids[1]})
    ).json()
    assert ([r["id"] for r in rest["runs"]], rest["next_before"]) == ([ids[0]], None)


async def test_list_filters(api: httpx.AsyncClient, service: Service, clock: FakeClock) -> None:
    await add_job(api, "a")
    await add_job(api, "b")
    ok = finished_run(service, "a", RunState.SUCCEEDED)
    bad = finished_run(service, "a", RunState.FAILED)
    clock.advance(3600)
    waiting = new_run(service, "b")
    (backfilled,) = service.store.create_runs(
        [
            NewRun(
                job_id="b",
                scheduled_for=clock.now - timedelta(days=3),
                trigger=TriggerKind.BACKFILL,
            )
        ],
        now=clock.now,
    )

    async def ids(**params: object) -> list[int]:
        response = await api.get("/api/v1/runs", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["runs"]]

    assert await ids(job="a") == [bad.id, ok.id]
    assert await ids(state="failed") == [bad.id]
    assert await ids(state="failed,succeeded") == [bad.id, ok.id]
    assert await ids(state=["scheduled", "succeeded"]) == [backfilled.id, waiting.id, ok.id]
    assert await ids(trigger="backfill") == [backfilled.id]
    assert await ids(since="2025-01-06T12:30:00Z") == [waiting.id]
    assert await ids(until="2025-01-06T12:30:00") == [backfilled.id, bad.id, ok.id]
    assert await ids(job="nope") == []


async def test_list_refuses_bad_parameters(api: httpx.AsyncClient) -> None:
    for params in (
        {"state": "sleeping"},
        {"trigger": "cosmic"},
        {"since": "yesterday"},
        {"limit": 0},
        {"before": 0},
    ):
        response = await api.get("/api/v1/runs", params=params)
        assert (response.status_code, code(response)) == (422, "invalid_request"), params
        assert response.json()["error"]["field"] == next(iter(params))


async def test_get_a_run(api: httpx.AsyncClient, service: Service) -> None:
    await add_job(api)
    run = finished_run(service, "nightly", took=1.5)
    body = (await api.get(f"/api/v1/runs/{run.id}")).json()
    assert body["state"] == "succeeded"
    assert body["duration"] == 1.5
    assert body["exit_code"] == 0
    assert body["idempotency_key"] == "nightly:20250106T120000.000000Z"
    missing = await api.get("/api/v1/runs/999999")
    assert (missing.status_code, code(missing)) == (404, "run_not_found")
    assert (await api.get("/api/v1/runs/abc")).status_code == 422


async def test_cancel_a_waiting_and_a_running_run(api: httpx.AsyncClient, service: Service) -> None:
    await add_job(api)
    waiting = new_run(service, "nightly")
    cancelled = (await api.post(f"/api/v1/runs/{waiting.id}/cancel")).json()
    assert cancelled["state"] == "cancelled"
    running = running_run(service, "nightly")
    asked = (await api.post(f"/api/v1/runs/{running.id}/cancel")).json()
    assert asked["state"] == "running"  # its node stops it and records it
    assert service.store.cancel_pending(running.id)
    events = [e.action for e in service.store.list_events(job_id="nightly")]
    assert events.count("run.cancel") == 2
    assert (await api.post("/api/v1/runs/999999/cancel")).status_code == 404


async def test_output_in_ranges_and_as_text(api: httpx.AsyncClient, service: Service) -> None:
    await add_job(api)
    run = running_run(service, "nightly")
    store = service.store
    store.append_output(run.id, [(1736164800.0, "stdout", "hello")], cap=1 << 20)
    store.append_output(run.id, [(1736164801.5, "stderr", "oops")], cap=1 << 20)
    body = (await api.get(f"/api/v1/runs/{run.id}/output")).json()
    assert body["done"] is False
    assert [line for c in body["chunks"] for line in c["lines"]] == [
        {"at": "2025-01-06T12:00:00Z", "stream": "stdout", "text": "hello"},
        {"at": "2025-01-06T12:00:01.500000Z", "stream": "stderr", "text": "oops"},
    ]
    first_id = body["chunks"][0]["id"]
    newer = (await api.get(f"/api/v1/runs/{run.id}/output", params={"after": first_id})).json()
    assert [c["lines"][0]["text"] for c in newer["chunks"]] == ["oops"]
    assert newer["next_after"] == body["next_after"]
    text = await api.get(f"/api/v1/runs/{run.id}/output", params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == "hello\noops\n"
    assert (await api.get("/api/v1/runs/999999/output")).status_code == 404


async def test_output_marks_the_cut_of_a_long_output(
    api: httpx.AsyncClient, service: Service
) -> None:
    await add_job(api)
    run = running_run(service, "nightly")
    for i in range(6):
        service.store.append_output(run.id, [(0.0, "stdout", f"line {i} " + "x" * 40)], cap=200)
    body = (await api.get(f"/api/v1/runs/{run.id}/output")).json()
    assert body["dropped_bytes"] > 0
    text = (await api.get(f"/api/v1/runs/{run.id}/output", params={"format": "text"})).text
    assert "bytes of output dropped" in text
    assert text.splitlines()[0].startswith("line 0")
    assert text.splitlines()[-1].startswith("line 5")


def events(stream: str) -> list[tuple[str, str, str | None]]:
    """(event, data, id) of a Server-Sent Events body."""
    found = []
    for block in stream.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            found.append((fields["event"], fields.get("data", ""), fields.get("id")))
    return found


async def test_the_stream_marks_where_output_was_cut(
    api: httpx.AsyncClient, service: Service
) -> None:
    await add_job(api)
    run = running_run(service, "nightly")
    lines = [(0.0, "stdout", f"{i:07d}") for i in range(100)]  # 800 bytes
    service.store.append_output(run.id, lines, cap=200)
    service.store.finish(
        run.id, node="test-node", outcome=RunResult(RunState.SUCCEEDED), now=service.clock()
    )
    found = events((await api.get(f"/api/v1/runs/{run.id}/output/stream")).text)
    assert [e[0] for e in found] == ["output", "cut", "output", "state", "end"]
    head, cut, tail = (json.loads(e[1]) for e in found[:3])
    assert [line["text"] for line in head["lines"]] == [f"{i:07d}" for i in range(12)]
    assert cut == {"dropped_bytes": 800 - 2 * 96}  # 12 whole lines kept at each end
    assert [line["text"] for line in tail["lines"]] == [f"{i:07d}" for i in range(88, 100)]


async def test_the_stream_of_an_ended_run_sends_its_output_then_ends(
    api: httpx.AsyncClient, service: Service
) -> None:
    await add_job(api)
    run = running_run(service, "nightly")
    service.store.append_output(run.id, [(0.0, "stdout", "one"), (0.0, "stdout", "two")], cap=999)
    finished = service.store.finish(
        run.id,
        node="test-node",
        outcome=RunResult(RunState.SUCCEEDED),
        now=service.clock(),
    )
    assert finished is not None
    response = await api.get(f"/api/v1/runs/{run.id}/output/stream")
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(response.text)
    assert [e[0] for e in found] == ["output", "state", "end"]
    chunk = json.loads(found[0][1])
    assert [line["text"] for line in chunk["lines"]] == ["one", "two"]
    assert found[0][2] == str(chunk["id"])
    assert json.loads(found[1][1])["state"] == "succeeded"
    assert json.loads(found[2][1]) == {"state": "succeeded", "after": chunk["id"]}

    resumed = await api.get(
        f"/api/v1/runs/{run.id}/output/stream", headers={"Last-Event-ID": str(chunk["id"])}
    )
    assert [e[0] for e in events(resumed.text)] == ["state", "end"]
    missing = await api.get("/api/v1/runs/999999/output/stream")
    assert (missing.status_code, code(missing)) == (404, "run_not_found")


async def test_artifacts_are_listed_and_downloaded(
    api: httpx.AsyncClient, service: Service
) -> None:
    await add_job(api)
    run = finished_run(service, "nightly")
    store = service.store
    store.add_artifact(run.id, "report.csv", b"a,b\n1,2\n", now=service.clock())
    store.add_artifact(run.id, "logs/page one.html", b"<script>x</script>", now=service.clock())
    listing = (await api.get(f"/api/v1/runs/{run.id}/artifacts")).json()
    assert listing["artifacts"] == [
        {
            "name": "logs/page one.html",
            "size": 18,
            "url": f"/api/v1/runs/{run.id}/artifacts/logs/page%20one.html",
        },
        {"name": "report.csv", "size": 8, "url": f"/api/v1/runs/{run.id}/artifacts/report.csv"},
    ]
    csv = await api.get(listing["artifacts"][1]["url"])
    assert csv.content == b"a,b\n1,2\n"
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == "attachment; filename*=UTF-8''report.csv"
    page = await api.get(listing["artifacts"][0]["url"])
    assert page.headers["content-disposition"].startswith("attachment")
    assert page.headers["content-security-policy"] == "sandbox"
    assert page.headers["x-content-type-options"] == "nosniff"
    missing = await api.get(f"/api/v1/runs/{run.id}/artifacts/nope.txt")
    assert (missing.status_code, code(missing)) == (404, "artifact_not_found")
    assert (await api.get("/api/v1/runs/999999/artifacts")).status_code == 404
    assert (await api.get("/api/v1/runs/999999/artifacts/a.txt")).status_code == 404


async def test_nodes_events_and_whoami(api: httpx.AsyncClient, service: Service) -> None:
    await add_job(api)
    await api.post("/api/v1/jobs/nightly/pause")
    audit = (await api.get("/api/v1/events", params={"job": "nightly"})).json()["events"]
    assert [(e["actor"], e["action"]) for e in audit] == [
        ("anonymous", "job.pause"),
        ("anonymous", "job.create"),
    ]
    assert (await api.get("/api/v1/nodes")).json() == {"nodes": []}
    me = (await api.get("/api/v1/whoami")).json()
    assert me == {"name": "anonymous", "scope": "admin", "anonymous": True}
