"""/api/v1/jobs on both stores: every route, its answers and its error paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from clocktower.model import RunState
from clocktower.service import Service
from tests.api.helpers import finished_run, running_run
from tests.conftest import FakeClock

NIGHTLY = {"command": "python manage.py cleanup", "cron": "0 3 * * *", "tags": ["django"]}


async def create(api: httpx.AsyncClient, job_id: str, **fields: object) -> httpx.Response:
    return await api.post("/api/v1/jobs", json={"id": job_id, **(fields or NIGHTLY)})


def error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    return dict(body["error"])


# --------------------------------------------------------------------------- create


async def test_create_answers_the_job_with_its_schedule_described(api: httpx.AsyncClient) -> None:
    response = await create(api, "nightly")
    assert response.status_code == 201
    job = response.json()
    assert job["id"] == "nightly"
    assert job["kind"] == "command"
    assert job["next_fire_at"] == "2025-01-07T03:00:00Z"
    assert job["schedule"] == {
        "kind": "cron",
        "expr": "0 3 * * *",
        "tz": "UTC",
        "description": "At 03:00, UTC",
        "readable": "daily at 03:00",
    }
    assert job["tags"] == ["django"]
    assert job["definition"]["command"] == "python manage.py cleanup"
    assert job["created_at"] == "2025-01-06T12:00:00Z"


async def test_create_is_idempotent_by_id(api: httpx.AsyncClient) -> None:
    first = await create(api, "nightly")
    again = await create(api, "nightly")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["version"] == first.json()["version"]


async def test_create_with_another_definition_is_a_conflict(api: httpx.AsyncClient) -> None:
    await create(api, "nightly")
    response = await create(api, "nightly", command="other", cron="0 4 * * *")
    assert response.status_code == 409
    assert error(response) | {"message": ""} == {
        "code": "job_exists",
        "message": "",
        "field": "id",
    }
    assert "PUT /api/v1/jobs/" in str(error(response)["message"])


async def test_a_job_read_back_can_be_posted_again(api: httpx.AsyncClient) -> None:
    created = (await create(api, "nightly")).json()
    response = await api.post("/api/v1/jobs", json=created["definition"])
    assert response.status_code == 200


async def test_invalid_definitions_name_the_field(api: httpx.AsyncClient) -> None:
    cases = {
        "cron": {"command": "x", "cron": "61 * * * *"},
        "comand": {"comand": "x"},
        "timeout": {"command": "x", "timeout": "soon"},
        "tz": {"command": "x", "cron": "0 3 * * *", "tz": "Mars/Base"},
    }
    for field, body in cases.items():
        response = await api.post("/api/v1/jobs", json={"id": "bad", **body})
        assert response.status_code == 422, field
        assert error(response)["code"] == "invalid_spec"
        assert error(response)["field"] == field
    unknown = await api.post("/api/v1/jobs", json={"id": "bad", "comand": "x"})
    assert "did you mean 'command'" in str(error(unknown)["message"])


async def test_create_needs_an_id_and_an_object(api: httpx.AsyncClient) -> None:
    no_id = await api.post("/api/v1/jobs", json={"command": "x"})
    assert (no_id.status_code, error(no_id)["code"], error(no_id)["field"]) == (
        422,
        "invalid_spec",
        "id",
    )
    bad_id = await api.post("/api/v1/jobs", json={"id": "Not A Slug", "command": "x"})
    assert (bad_id.status_code, error(bad_id)["field"]) == (422, "id")
    not_object = await api.post("/api/v1/jobs", json=["id", "x"])
    assert (not_object.status_code, error(not_object)["code"]) == (422, "invalid_request")
    not_json = await api.post(
        "/api/v1/jobs", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status_code, error(not_json)["code"]) == (422, "invalid_request")


# --------------------------------------------------------------------------- one-off jobs


async def test_one_off_job_put_reschedules_and_delete_cancels(api: httpx.AsyncClient) -> None:
    campaign = {"url": "https://app.example/campaigns/42/send", "at": "2025-02-01T09:00:00Z"}
    created = await api.post("/api/v1/jobs", json={"id": "campaign-42", **campaign})
    assert created.json()["next_fire_at"] == "2025-02-01T09:00:00Z"

    moved = {**campaign, "at": "2025-02-03T10:30:00+01:00"}
    replaced = await api.put("/api/v1/jobs/campaign-42", json=moved)
    assert replaced.status_code == 200
    assert replaced.json()["next_fire_at"] == "2025-02-03T09:30:00Z"

    deleted = await api.delete("/api/v1/jobs/campaign-42")
    assert deleted.json() == {"id": "campaign-42", "deleted": True, "cancelled_runs": []}
    gone = await api.get("/api/v1/jobs/campaign-42")
    assert (gone.status_code, error(gone)["code"]) == (404, "job_not_found")


async def test_put_creates_a_missing_job(api: httpx.AsyncClient) -> None:
    response = await api.put("/api/v1/jobs/fresh", json=NIGHTLY)
    assert response.status_code == 201
    mismatched = await api.put("/api/v1/jobs/fresh", json={**NIGHTLY, "id": "other"})
    assert (mismatched.status_code, error(mismatched)["field"]) == (422, "id")


async def test_patch_changes_some_fields_and_null_removes_one(api: httpx.AsyncClient) -> None:
    await create(api, "nightly", **NIGHTLY, description="cleanup")
    patched = await api.patch("/api/v1/jobs/nightly", json={"cron": "30 4 * * *"})
    assert patched.status_code == 200
    body = patched.json()
    assert body["next_fire_at"] == "2025-01-07T04:30:00Z"
    assert body["description"] == "cleanup"
    assert body["version"] == 2
    cleared = await api.patch("/api/v1/jobs/nightly", json={"description": None})
    assert cleared.json()["description"] == ""
    invalid = await api.patch("/api/v1/jobs/nightly", json={"retries": -1})
    assert (invalid.status_code, error(invalid)["field"]) == (422, "retries")
    missing = await api.patch("/api/v1/jobs/nope", json={"retries": 1})
    assert missing.status_code == 404


async def test_delete_cancels_waiting_runs_and_asks_running_ones_to_stop(
    api: httpx.AsyncClient, service: Service
) -> None:
    await create(api, "nightly")
    running = running_run(service, "nightly")
    response = await api.delete("/api/v1/jobs/nightly")
    assert response.json()["cancelled_runs"] == [running.id]
    again = await api.delete("/api/v1/jobs/nightly")
    assert (again.status_code, error(again)["code"]) == (404, "job_not_found")


# --------------------------------------------------------------------------- reads


async def test_get_shows_the_last_run_and_success_rate(
    api: httpx.AsyncClient, service: Service
) -> None:
    await create(api, "nightly")
    finished_run(service, "nightly", RunState.SUCCEEDED)
    last = finished_run(service, "nightly", RunState.FAILED, took=2.5)
    job = (await api.get("/api/v1/jobs/nightly")).json()
    assert job["last_run"] == {
        "id": last.id,
        "state": "failed",
        "finished_at": "2025-01-06T12:00:02.500000Z",
        "duration": 2.5,
    }
    assert job["success_rate"] == 0.5


async def test_list_filters_and_pages(api: httpx.AsyncClient) -> None:
    for i in range(5):
        await create(api, f"job-{i}", command="x", every="1h", tags=["even" if i % 2 else "odd"])
    await create(api, "hook", url="https://example.com/hook", every="1h")
    await api.post("/api/v1/jobs/job-3/pause")

    page = (await api.get("/api/v1/jobs", params={"limit": 2})).json()
    assert [j["id"] for j in page["jobs"]] == ["hook", "job-0"]
    assert (page["total"], page["next_offset"]) == (6, 2)
    last = (await api.get("/api/v1/jobs", params={"limit": 2, "offset": 4})).json()
    assert [j["id"] for j in last["jobs"]] == ["job-3", "job-4"]
    assert last["next_offset"] is None

    async def ids(**params: object) -> list[str]:
        response = await api.get("/api/v1/jobs", params=params)
        return [j["id"] for j in response.json()["jobs"]]

    assert await ids(kind="http") == ["hook"]
    assert await ids(tag="even") == ["job-1", "job-3"]
    assert await ids(state="paused") == ["job-3"]
    assert await ids(text="job-4") == ["job-4"]
    assert await ids(text="odd") == ["job-0", "job-2", "job-4"]
    assert (await ids(state="active"))[:2] == ["hook", "job-0"]
    assert len(await ids(sort="next")) == 6


async def test_list_refuses_bad_parameters(api: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"state": "odd"}, {"kind": "x"}):
        response = await api.get("/api/v1/jobs", params=params)
        assert response.status_code == 422, params
        assert error(response)["code"] == "invalid_request"
        assert error(response)["field"] == next(iter(params))


async def test_preview_lists_the_next_fire_times(api: httpx.AsyncClient) -> None:
    await create(
        api, "monthly", command="x", schedule="monthly on the 5th at 18:00", tz="Europe/Paris"
    )
    preview = (await api.get("/api/v1/jobs/monthly/preview", params={"count": 3})).json()
    assert preview["fire_times"] == [
        "2025-02-05T17:00:00Z",
        "2025-03-05T17:00:00Z",
        "2025-04-05T16:00:00Z",
    ]
    assert preview["schedule"]["readable"] == "monthly on the 5th at 18:00"
    await create(api, "manual-only", command="x")
    empty = (await api.get("/api/v1/jobs/manual-only/preview")).json()
    assert (empty["fire_times"], empty["schedule"]) == ([], None)
    assert (await api.get("/api/v1/jobs/nope/preview")).status_code == 404


# --------------------------------------------------------------------------- operations


async def test_pause_and_resume(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await create(api, "nightly")
    paused = (await api.post("/api/v1/jobs/nightly/pause")).json()
    assert paused["paused"] is True
    assert paused["paused_at"] == "2025-01-06T12:00:00Z"
    clock.advance(86400 * 2)
    resumed = (await api.post("/api/v1/jobs/nightly/resume")).json()
    assert resumed["paused"] is False
    assert resumed["next_fire_at"] == "2025-01-09T03:00:00Z"  # no catch-up of paused time
    assert (await api.post("/api/v1/jobs/nope/pause")).status_code == 404
    assert (await api.post("/api/v1/jobs/nope/resume")).status_code == 404


async def test_trigger_runs_now_with_a_payload(api: httpx.AsyncClient) -> None:
    await create(api, "nightly")
    response = await api.post(
        "/api/v1/jobs/nightly/trigger", json={"payload": {"week": 42}, "env": {"DRY": "1"}}
    )
    assert response.status_code == 202
    run = response.json()
    assert (run["trigger"], run["state"], run["payload"]) == ("manual", "scheduled", {"week": 42})
    assert run["env_keys"] == ["DRY"]
    assert run["scheduled_for"] == "2025-01-06T12:00:00Z"
    bare = await api.post("/api/v1/jobs/nightly/trigger")
    assert bare.status_code == 202


async def test_trigger_is_refused_when_the_overlap_policy_forbids_it(
    api: httpx.AsyncClient, service: Service
) -> None:
    await create(api, "nightly")
    running = running_run(service, "nightly")
    response = await api.post("/api/v1/jobs/nightly/trigger")
    assert response.status_code == 409
    assert error(response)["code"] == "trigger_refused"
    assert f"previous run {running.id} still running" in str(error(response)["message"])
    await create(api, "parallel", command="x", overlap="allow", max_concurrency=3)
    running_run(service, "parallel")
    assert (await api.post("/api/v1/jobs/parallel/trigger")).status_code == 202


async def test_trigger_errors(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/jobs/nope/trigger")).status_code == 404
    await create(api, "nightly")
    bad = await api.post("/api/v1/jobs/nightly/trigger", json={"env": {"A": 1}})
    assert (bad.status_code, error(bad)["field"]) == (422, "env.A")
    extra = await api.post("/api/v1/jobs/nightly/trigger", json={"payload": 1, "later": True})
    assert (extra.status_code, error(extra)["field"]) == (422, "later")
    for name in ("CLOCKTOWER_JOB", "1BAD"):  # refused in a job's env, so here too
        refused = await api.post("/api/v1/jobs/nightly/trigger", json={"env": {name: "x"}})
        assert (refused.status_code, error(refused)["field"]) == (422, f"env.{name}")
    assert (await api.get("/api/v1/runs", params={"job": "nightly"})).json()["runs"] == []


async def test_backfill_creates_one_run_per_past_fire_time(api: httpx.AsyncClient) -> None:
    await create(api, "nightly")
    response = await api.post(
        "/api/v1/jobs/nightly/backfill",
        json={"from": "2025-01-01T00:00:00Z", "to": "2025-01-03T23:59:59"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["count"] == 3
    assert [r["scheduled_for"] for r in body["runs"]] == [
        "2025-01-01T03:00:00Z",
        "2025-01-02T03:00:00Z",
        "2025-01-03T03:00:00Z",
    ]
    assert {r["trigger"] for r in body["runs"]} == {"backfill"}


async def test_backfill_errors(api: httpx.AsyncClient) -> None:
    await create(api, "nightly")
    backwards = await api.post(
        "/api/v1/jobs/nightly/backfill", json={"from": "2025-01-03T00:00:00Z", "to": "2025-01-01"}
    )
    assert (backwards.status_code, error(backwards)["field"]) == (422, "to")
    await create(api, "manual-only", command="x")
    unscheduled = await api.post(
        "/api/v1/jobs/manual-only/backfill", json={"from": "2025-01-01", "to": "2025-01-02"}
    )
    assert (unscheduled.status_code, error(unscheduled)["code"]) == (422, "invalid_spec")
    missing = await api.post("/api/v1/jobs/nightly/backfill", json={"from": "2025-01-01"})
    assert (missing.status_code, error(missing)["field"]) == (422, "to")
    unknown = await api.post(
        "/api/v1/jobs/nope/backfill", json={"from": "2025-01-01", "to": "2025-01-02"}
    )
    assert unknown.status_code == 404


async def test_instants_are_utc_with_a_z(api: httpx.AsyncClient) -> None:
    await create(api, "paris", command="x", cron="0 9 * * *", tz="Europe/Paris")
    job = (await api.get("/api/v1/jobs/paris")).json()
    assert job["next_fire_at"] == "2025-01-07T08:00:00Z"
    parsed = datetime.fromisoformat(job["next_fire_at"])
    assert parsed.utcoffset() == timedelta(0)
    assert parsed == datetime(2025, 1, 7, 8, tzinfo=UTC)
