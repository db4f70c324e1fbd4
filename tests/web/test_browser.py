"""The dashboard in real headless Chromium against a real node (scheduler loop
and HTTP server on a free port): login, pause/resume/trigger from the jobs
page, a run page tailing live output, CSRF rejection. Every page is
screenshotted into test-artifacts/screenshots/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from clocktower.api.tokens import create_token
from tests.api.helpers import LiveNode, live_node

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WAIT = 20_000  # ms a condition may take to show (a run starting, output arriving)

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium")

JOBS = {
    "cleanup-deleted-prompts": {
        "command": "echo cleaning up; echo done",
        "cron": "0 3 * * *",
        "description": "python manage.py cleanup_deleted_prompts",
        "tags": ["django"],
    },
    "weekly-summary": {"command": "echo summary", "schedule": "mondays at 06:00"},
    "monthly-batch": {
        "url": "http://127.0.0.1:9/never",
        "schedule": "monthly on the 5th at 18:00",
        "tz": "Europe/Paris",
    },
    "health-check": {"command": "true", "every": "5m"},
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    tmp = tmp_path_factory.mktemp("browser")
    with live_node(f"sqlite:///{tmp / 'clocktower.db'}", tmp) as running:
        for job_id, definition in JOBS.items():
            running.service.create_job(definition, job_id=job_id, actor="setup")
        yield running


@pytest.fixture(scope="module")
def secrets(node: LiveNode) -> dict[str, str]:
    return {s: create_token(node.store, f"{s}-user", s).secret for s in ("read", "operate")}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def log_in(page: Page, node: LiveNode, secret: str, path: str = "/") -> None:
    page.goto(node.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))  # a same-site hop to the login page
    page.get_by_label("Token").fill(secret)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(node.url + path)


def job_row(page: Page, job_id: str) -> object:
    return page.locator(f'tr[data-job="{job_id}"]')


# --------------------------------------------------------------------------- tests


def test_login_and_every_page(page: Page, node: LiveNode, secrets: dict[str, str]) -> None:
    page.goto(node.url + "/login")
    shot(page, "login")
    log_in(page, node, secrets["read"])
    expect(page.get_by_role("heading", name=re.compile("^Jobs"))).to_be_visible()
    expect(page.locator(".flash")).to_contain_text("Logged in as read-user (read)")
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)  # read: no buttons
    shot(page, "jobs")

    page.get_by_role("link", name="monthly-batch").click()
    expect(page.get_by_role("heading", name="monthly-batch")).to_be_visible()
    expect(page.locator("ol.times li").first).to_contain_text("Europe/Paris")
    shot(page, "job")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Now").click()
    expect(page.get_by_role("heading", name=re.compile("The week ahead"))).to_be_visible()
    expect(page.locator(".week")).to_contain_text("cleanup-deleted-prompts")
    shot(page, "now")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Health").click()
    expect(page.locator("[data-live=health-body] .flash")).to_contain_text("Ready")
    expect(page.locator("table")).to_contain_text("test-node")
    shot(page, "health")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(node.url + "/")
    shot(page, "jobs-phone")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(node.url + "/login")
    page.goto(node.url + "/")
    page.wait_for_url(re.compile(r"/login\?next="))


def test_pause_resume_and_trigger_from_the_jobs_page(
    page: Page, node: LiveNode, secrets: dict[str, str]
) -> None:
    log_in(page, node, secrets["operate"])
    row = page.locator('tr[data-job="weekly-summary"]')
    row.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash")).to_have_text("Paused weekly-summary.")
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    expect(row).to_contain_text("paused")
    assert node.store.get_job("weekly-summary").paused

    row.get_by_role("button", name="Resume").click()
    expect(page.locator(".flash")).to_have_text("Resumed weekly-summary.")
    assert not node.store.get_job("weekly-summary").paused

    row.get_by_role("button", name="Run now").click()
    expect(page.locator(".flash")).to_contain_text("Started run")
    run_id = int(re.findall(r"\d+", page.locator(".flash").inner_text())[0])
    # The row refreshes by itself (polling) once the run has ended.
    expect(row.locator(".badge.ok")).to_have_text("succeeded", timeout=WAIT)
    run = node.store.get_run(run_id)
    assert (run.job_id, run.trigger, run.state) == ("weekly-summary", "manual", "succeeded")
    events = node.store.list_events(job_id="weekly-summary", limit=3)
    assert [(e.actor, e.action) for e in events] == [
        ("operate-user", "run.trigger"),
        ("operate-user", "job.resume"),
        ("operate-user", "job.pause"),
    ]


def test_a_run_page_tails_the_output_live(
    page: Page, node: LiveNode, secrets: dict[str, str], tmp_path: Path
) -> None:
    go = tmp_path / "go"
    command = (
        "echo first line; echo ::progress 1/2; "
        f"while [ ! -e {go} ]; do sleep 0.05; done; echo second line; echo oops >&2"
    )
    node.service.create_job({"command": command}, job_id="tail-me", actor="setup")
    log_in(page, node, secrets["operate"], "/jobs/tail-me")
    page.get_by_role("button", name="Run now").click()
    run_id = int(re.findall(r"\d+", page.locator(".flash").inner_text())[0])
    page.goto(f"{node.url}/runs/{run_id}")
    output = page.locator("pre#output")
    expect(output).to_contain_text("first line", timeout=WAIT)
    expect(page.locator("[data-live=run-head] .badge")).to_have_text("running", timeout=WAIT)
    expect(page.locator("[data-live=run-head] progress")).to_have_attribute("value", "1.0")
    shot(page, "run-live")

    go.touch()  # let the command finish; the page must follow without a reload
    expect(output).to_contain_text("second line", timeout=WAIT)
    expect(output.locator("span.err")).to_have_text("oops")
    expect(output).to_have_attribute("data-ended", "succeeded", timeout=WAIT)
    expect(page.locator("[data-live=run-head] .badge")).to_have_text("succeeded", timeout=WAIT)
    assert output.inner_text().splitlines() == ["first line", "second line", "oops"]
    shot(page, "run")


def test_a_forged_form_is_refused(page: Page, node: LiveNode, secrets: dict[str, str]) -> None:
    log_in(page, node, secrets["operate"])
    row = page.locator('tr[data-job="health-check"]')
    form = row.locator("form").first
    form.locator("input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("CSRF")
    shot(page, "csrf-refused")
    assert not node.store.get_job("health-check").paused
