"""The dashboard over HTTP on both stores: login, sessions, CSRF, scopes, pages,
forms and the live parts' status endpoint."""

from __future__ import annotations

import html
import json
import re

import httpx
from fastapi import FastAPI

from clocktower.api.context import CACHE_LAG
from clocktower.api.tokens import revoke_token
from clocktower.model import RunState
from clocktower.service import Service
from clocktower.store import Store
from clocktower.web.session import read_session, safe_next, session_value
from tests.api.helpers import Tokens, app_for, client_for, finished_run, running_run
from tests.conftest import FakeClock
from tests.web.conftest import csrf_of, form_post, log_in


def cookie_header(response: httpx.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert headers, f"no {name} cookie set"
    return headers[0]


# --------------------------------------------------------------------------- login


async def test_pages_need_a_login(browser: httpx.AsyncClient) -> None:
    for path in ("/", "/jobs/nightly", "/now", "/health", "/runs/1"):
        response = await browser.get(path)
        assert response.status_code == 401, path
        assert 'http-equiv="refresh"' in response.text
        assert "/login?next=" in response.text
    status = await browser.get("/status/jobs")
    assert (status.status_code, status.json()["error"]["code"]) == (401, "unauthorized")


async def test_login_sets_a_strict_http_only_session(
    browser: httpx.AsyncClient, tokens: Tokens
) -> None:
    page = await browser.get("/login")
    assert page.status_code == 200
    csrf_cookie = cookie_header(page, "ct_csrf").lower()
    assert "httponly" in csrf_cookie and "samesite=strict" in csrf_cookie
    response = await log_in(browser, tokens.secrets["read"], next="/now")
    assert response.headers["location"] == "/now"
    session = cookie_header(response, "ct_session").lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    jobs = await browser.get("/")
    assert jobs.status_code == 200
    assert "read-bot" in jobs.text
    assert "Logged in as read-bot (read)." in jobs.text  # the flash message


async def test_a_wrong_token_does_not_log_in(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/login")
    response = await browser.post(
        "/login", data={"token": "ct_wrong", "csrf": csrf_of(page.text), "next": "/"}
    )
    assert response.status_code == 401
    assert "not valid" in response.text
    assert "ct_session" not in response.headers.get("set-cookie", "")


async def test_logged_in_users_skip_the_login_page(
    browser: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_in(browser, tokens.secrets["read"])
    response = await browser.get("/login", params={"next": "/now"})
    assert (response.status_code, response.headers["location"]) == (303, "/now")


async def test_logout_ends_the_session(browser: httpx.AsyncClient, tokens: Tokens) -> None:
    await log_in(browser, tokens.secrets["read"])
    response = await form_post(browser, "/", "/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert (await browser.get("/")).status_code == 401


async def test_revoking_the_token_ends_its_sessions(
    service: Service, tokens: Tokens, store: Store
) -> None:
    ticks = [1000.0]
    async with client_for(app_for(service, cache_clock=lambda: ticks[0])) as browser:
        await log_in(browser, tokens.secrets["operate"])
        assert (await browser.get("/")).status_code == 200
        revoke_token(store, "operate-bot")
        ticks[0] += CACHE_LAG
        assert (await browser.get("/")).status_code == 401


def test_session_values_are_signed_and_expire(app: FastAPI) -> None:
    ctx = app.state.ctx
    value = session_value(ctx, "abc", now=1000.0)
    assert read_session(ctx, value, now=1001.0) == "abc"
    assert read_session(ctx, value, now=1000.0 + 13 * 3600) is None
    payload, mac = value.split(".")
    assert read_session(ctx, f"{payload}x.{mac}", now=1001.0) is None
    assert read_session(ctx, f"{payload}.{mac[:-2]}AA", now=1001.0) is None
    assert read_session(ctx, "garbage", now=1001.0) is None
    other = app_for(ctx.service)  # another process: another key
    assert read_session(other.state.ctx, value, now=1001.0) is None


def test_next_is_always_local() -> None:
    assert safe_next("/jobs/a?x=1") == "/jobs/a?x=1"
    for target in ("https://evil.example/", "//evil.example", "/\\evil", "", None, "jobs"):
        assert safe_next(target) == "/"


# --------------------------------------------------------------------------- CSRF


async def test_forms_without_a_valid_csrf_token_are_refused(
    browser: httpx.AsyncClient, tokens: Tokens, store: Store
) -> None:
    await log_in(browser, tokens.secrets["operate"])
    for data in ({}, {"csrf": "forged"}, {"csrf": ""}):
        response = await browser.post("/jobs/nightly/pause", data=data)
        assert response.status_code == 403, data
        assert "CSRF" in response.text
    page = await browser.get("/")
    other_origin = await browser.post(
        "/jobs/nightly/pause",
        data={"csrf": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert other_origin.status_code == 403
    assert not store.get_job("nightly").paused


async def test_the_csrf_token_belongs_to_the_browser(
    app: FastAPI, browser: httpx.AsyncClient, tokens: Tokens
) -> None:
    await log_in(browser, tokens.secrets["operate"])
    async with client_for(app) as attacker:
        token_of_attacker = csrf_of((await attacker.get("/login")).text)
    response = await browser.post("/jobs/nightly/pause", data={"csrf": token_of_attacker})
    assert response.status_code == 403


async def test_login_itself_needs_the_csrf_token(
    browser: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await browser.post("/login", data={"token": tokens.secrets["read"]})
    assert response.status_code == 403


# --------------------------------------------------------------------------- scopes


async def test_read_scope_sees_no_buttons_and_cannot_press_them(
    browser: httpx.AsyncClient, tokens: Tokens, store: Store
) -> None:
    await log_in(browser, tokens.secrets["read"])
    page = await browser.get("/")
    assert "nightly" in page.text
    assert "Run now" not in page.text and ">Pause<" not in page.text
    response = await form_post(browser, "/", "/jobs/nightly/pause")
    assert response.status_code == 403
    assert "needs the operate scope" in response.text
    assert not store.get_job("nightly").paused


async def test_operate_pauses_resumes_and_triggers(
    browser: httpx.AsyncClient, tokens: Tokens, store: Store
) -> None:
    await log_in(browser, tokens.secrets["operate"])
    paused = await form_post(browser, "/", "/jobs/nightly/pause")
    assert (paused.status_code, paused.headers["location"]) == (303, "/")
    assert store.get_job("nightly").paused
    page = await browser.get("/")
    assert "Paused nightly." in page.text and ">Resume<" in page.text
    await form_post(browser, "/", "/jobs/nightly/resume")
    assert not store.get_job("nightly").paused
    triggered = await form_post(browser, "/jobs/nightly", "/jobs/nightly/trigger")
    assert triggered.headers["location"] == "/jobs/nightly"
    (run,) = store.list_runs(job_id="nightly")
    assert run.trigger == "manual"
    actions = [(e.actor, e.action) for e in store.list_events(job_id="nightly", limit=3)]
    assert actions == [
        ("operate-bot", "run.trigger"),
        ("operate-bot", "job.resume"),
        ("operate-bot", "job.pause"),
    ]


async def test_viewers_get_their_own_name_and_csrf_token_on_a_shared_jobs_page(
    app: FastAPI, tokens: Tokens, store: Store
) -> None:
    cache = app.state.ctx.rows
    async with client_for(app) as one, client_for(app) as two, client_for(app) as reader:
        for client in (one, two):
            await log_in(client, tokens.secrets["operate"])
        await log_in(reader, tokens.secrets["read"])
        first = await one.get("/")
        hits = cache.hits
        second = await two.get("/")
        if store.change_stamp() is not None:  # a store whose answers are cached
            assert cache.hits > hits
        assert csrf_of(first.text) != csrf_of(second.text)
        read_page = (await reader.get("/")).text
        assert "read-bot" in read_page and "operate-bot" not in read_page
        assert ">Pause<" not in read_page
        # Each token works for its own browser only.
        stolen = await two.post("/jobs/nightly/pause", data={"csrf": csrf_of(first.text)})
        assert stolen.status_code == 403
        paused = await two.post("/jobs/nightly/pause", data={"csrf": csrf_of(second.text)})
        assert paused.status_code == 303 and store.get_job("nightly").paused
        assert ">Resume<" in (await one.get("/")).text


async def test_an_aged_jobs_page_is_answered_at_once_and_rendered_again_behind_it(
    app: FastAPI, browser: httpx.AsyncClient, tokens: Tokens, clock: FakeClock, service: Service
) -> None:
    service.create_job({"command": "true", "cron": "10 12 * * *"}, job_id="soon", actor="t")
    await log_in(browser, tokens.secrets["read"])
    await browser.get("/")  # the one that shows the login's message
    assert ">in 10 min<" in (await browser.get("/")).text  # now is 12:00
    clock.advance(50)  # the page has aged; the store has not changed
    builds = app.state.ctx.pages.misses
    aged = [(await browser.get("/")).text for _ in range(3)]
    await app.state.ctx.settled()
    assert ">in 9 min<" in (await browser.get("/")).text
    if service.store.change_stamp() is not None:  # answers are cached: the aged one came first
        assert all(">in 10 min<" in page for page in aged)
        assert app.state.ctx.pages.misses == builds + 1  # rendered again once, not per request


async def test_the_jobs_page_follows_each_jobs_runs(tokens: Tokens, service: Service) -> None:
    ticks = [1000.0]
    app = app_for(service, cache_clock=lambda: ticks[0])
    service.create_job({"command": "true", "cron": "0 4 * * *"}, job_id="other", actor="t")
    finished_run(service, "nightly", RunState.FAILED)

    def last_results(page: str) -> dict[str, str]:
        found = {}
        for job_id, row in re.findall(r'data-job="([^"]+)"(.*?)</tr>', page, re.S):
            badge = re.search(r'class="badge [^"]*">([a-z]+)<', row)
            found[job_id] = badge.group(1) if badge else "never ran"
        return found

    async with client_for(app) as browser:
        await log_in(browser, tokens.secrets["read"])
        await browser.get("/")  # the one that shows the login's message
        assert last_results((await browser.get("/")).text) == {
            "nightly": "failed",
            "other": "never ran",
        }
        finished_run(service, "other")  # one job's runs change (as a node records them)
        ticks[0] += CACHE_LAG
        assert last_results((await browser.get("/")).text) == {
            "nightly": "failed",
            "other": "succeeded",
        }
        finished_run(service, "nightly")
        ticks[0] += CACHE_LAG
        assert last_results((await browser.get("/")).text) == {
            "nightly": "succeeded",
            "other": "succeeded",
        }


async def test_a_refused_trigger_says_why(
    browser: httpx.AsyncClient, tokens: Tokens, service: Service
) -> None:
    running_run(service, "nightly")
    await log_in(browser, tokens.secrets["operate"])
    response = await form_post(browser, "/", "/jobs/nightly/trigger")
    assert response.status_code == 303
    page = await browser.get("/")
    assert "still running (overlap = skip)" in page.text
    assert 'class="flash err"' in page.text


async def test_backfill_form_reads_times_in_the_given_zone(
    browser: httpx.AsyncClient, tokens: Tokens, store: Store
) -> None:
    await log_in(browser, tokens.secrets["operate"])
    response = await form_post(
        browser,
        "/jobs/nightly",
        "/jobs/nightly/backfill",
        **{"from": "2025-01-01T00:00", "to": "2025-01-02T05:00", "tz": "Europe/Paris"},
    )
    assert response.status_code == 303
    runs = store.list_runs(job_id="nightly")
    assert sorted(r.scheduled_for.isoformat() for r in runs) == [
        "2025-01-01T03:00:00+00:00",
        "2025-01-02T03:00:00+00:00",
    ]
    assert "Backfill queued: 2 run(s)." in (await browser.get("/jobs/nightly")).text
    bad = await form_post(
        browser, "/jobs/nightly", "/jobs/nightly/backfill", **{"from": "soon", "to": "later"}
    )
    assert bad.status_code == 303
    assert "is not a date and time" in (await browser.get("/jobs/nightly")).text


async def test_cancel_from_the_run_page(
    browser: httpx.AsyncClient, tokens: Tokens, service: Service
) -> None:
    run = running_run(service, "nightly")
    await log_in(browser, tokens.secrets["operate"])
    page = await browser.get(f"/runs/{run.id}")
    assert ">Cancel<" in page.text
    response = await form_post(browser, f"/runs/{run.id}", f"/runs/{run.id}/cancel")
    assert response.status_code == 303
    after = await browser.get(f"/runs/{run.id}")
    assert f"Asked run {run.id} to stop." in after.text
    assert "Stopping…" in after.text


# --------------------------------------------------------------------------- pages


async def test_every_page_renders(
    browser: httpx.AsyncClient, tokens: Tokens, service: Service
) -> None:
    done = finished_run(service, "nightly", RunState.FAILED)
    service.store.append_output(done.id, [(0.0, "stderr", "<b>boom</b>")], cap=999)
    service.store.add_artifact(done.id, "report.txt", b"hello", now=service.clock())
    await log_in(browser, tokens.secrets["admin"])
    jobs = await browser.get("/")
    assert "daily at 03:00" in jobs.text and "the nightly cleanup" in jobs.text
    assert "<svg" in jobs.text  # the duration sparkline
    job = await browser.get("/jobs/nightly")
    assert "Next fire times" in job.text and "2025-01-07 03:00" in job.text
    assert "Backfill" in job.text and '"command": "echo hi"' in html.unescape(job.text)
    run = await browser.get(f"/runs/{done.id}")
    assert "&lt;b&gt;boom&lt;/b&gt;" in run.text  # output is escaped
    assert f"/runs/{done.id}/artifacts/report.txt" in run.text
    now = await browser.get("/now")
    assert "The week ahead" in now.text and "03:00" in now.text
    health = await browser.get("/health")
    assert "Ready" in health.text
    for page in (jobs, job, run, now, health):
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"


async def test_unknown_things_are_html_404s(browser: httpx.AsyncClient, tokens: Tokens) -> None:
    await log_in(browser, tokens.secrets["read"])
    for path in ("/jobs/nope", "/runs/99999", "/nowhere"):
        response = await browser.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text


async def test_jobs_page_filters_and_pages(
    browser: httpx.AsyncClient, tokens: Tokens, service: Service
) -> None:
    for i in range(55):
        service.create_job(
            {"url": "https://example.com", "every": "1h"}, job_id=f"hook-{i:02d}", actor="t"
        )
    await log_in(browser, tokens.secrets["read"])
    first = await browser.get("/")
    assert "1–50 of 56" in first.text and "offset=50" in first.text
    second = await browser.get("/", params={"offset": 50})
    assert "51–56 of 56" in second.text and "nightly" in second.text
    only_commands = await browser.get("/", params={"kind": "command"})
    assert "hook-00" not in only_commands.text and "nightly" in only_commands.text


async def test_status_endpoint_returns_the_live_fragments(
    browser: httpx.AsyncClient, tokens: Tokens, service: Service
) -> None:
    run = running_run(service, "nightly")
    service.store.set_progress(run.id, 3, 4)
    await log_in(browser, tokens.secrets["operate"])
    jobs = (await browser.get("/status/jobs", params={"kind": "command"})).json()
    assert set(jobs) == {"jobs-rows"} and "nightly" in jobs["jobs-rows"]
    assert 'name="next" value="/?kind=command"' in jobs["jobs-rows"]
    now = (await browser.get("/status/now")).json()
    assert (
        f"#{run.id}" in now["now-running"]
        and '<progress max="4.0" value="3.0">' in now["now-running"]
    )
    head = (await browser.get(f"/status/run/{run.id}")).json()
    assert "running" in head["run-head"]
    health = (await browser.get("/status/health")).json()
    assert "Ready" in health["health-body"]


async def test_the_run_stream_and_artifacts_use_the_session(
    browser: httpx.AsyncClient, tokens: Tokens, service: Service
) -> None:
    done = finished_run(service, "nightly")
    service.store.append_output(done.id, [(0.0, "stdout", "hi")], cap=999)
    service.store.add_artifact(done.id, "r.txt", b"data", now=service.clock())
    assert (await browser.get(f"/runs/{done.id}/stream")).status_code == 401
    await log_in(browser, tokens.secrets["read"])
    stream = await browser.get(f"/runs/{done.id}/stream")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: end" in stream.text
    data = [line for line in stream.text.splitlines() if line.startswith('data: {"id"')]
    assert json.loads(data[0].removeprefix("data: "))["lines"][0]["text"] == "hi"
    artifact = await browser.get(f"/runs/{done.id}/artifacts/r.txt")
    assert artifact.content == b"data"


async def test_anonymous_mode_needs_no_login(service: Service) -> None:
    async with client_for(app_for(service, allow_anonymous=True)) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert "No API token exists yet" in page.text
        assert "Run now" in page.text
        response = await form_post(client, "/", "/jobs/nightly/pause")
        assert response.status_code == 303
    assert service.store.get_job("nightly").paused
