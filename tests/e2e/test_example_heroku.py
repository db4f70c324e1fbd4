"""examples/heroku-scheduler, driven as its README tells a user to."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from clocktower.model import RunState
from clocktower.store import Store

from .nodes import Node, cli, dump, eventually

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "heroku-scheduler"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    shutil.copytree(EXAMPLE, folder)
    return folder


@pytest.fixture
def node(store: Store, app: Path, tmp_path: Path) -> Iterator[Node]:
    n = Node(store.url, tmp_path / "node.log", name="heroku", config=app / "clocktower.toml")
    eventually(lambda: len(store.list_jobs()) == 4, what="the config's jobs")
    yield n
    n.stop()


def finished(store: Store, run_id: int) -> RunState | None:
    state = store.get_run(run_id).state
    return state if state.final else None


def trigger(store: Store, job: str, *env: str) -> int:
    args = ["trigger", job, "--json"]
    for pair in env:
        args += ["--env", pair]
    out = cli(*args, database=store.url).stdout
    return int(json.loads(out)["id"])


def test_the_maintenance_jobs_are_scheduled_as_on_heroku(store: Store, node: Node) -> None:
    listed = json.loads(cli("jobs", "list", "--json", database=store.url).stdout)
    schedules = {job["id"]: job["schedule"]["readable"] for job in listed}
    assert schedules == {
        "cleanup-deleted-prompts": "daily at 03:00",
        "detect-orphans-daily": "daily at 04:00",
        "detect-orphans-deep": "sundays at 05:00",
        "weekly-summary": "mondays at 06:00",
    }
    assert all(job["next_fire_at"].endswith("Z") for job in listed)


def test_dry_run_then_real_run_with_a_report_kept(store: Store, node: Node, app: Path) -> None:
    before = (app / "data" / "prompts.json").read_text()
    dry = trigger(store, "cleanup-deleted-prompts", "DRY_RUN=1")
    assert eventually(lambda: finished(store, dry), what="dry run") is RunState.SUCCEEDED
    assert (app / "data" / "prompts.json").read_text() == before
    report = json.loads(store.get_artifact(dry, "cleanup.json") or b"{}")
    assert report["dry_run"] is True and report["deleted"] == 1

    real = trigger(store, "cleanup-deleted-prompts")
    assert eventually(lambda: finished(store, real), what="run") is RunState.SUCCEEDED, dump([node])
    remaining = [p["id"] for p in json.loads((app / "data" / "prompts.json").read_text())]
    assert remaining == ["p1", "p3"]
    assert "deleted prompt p2" in cli("logs", str(real), database=store.url).stdout


def test_a_missed_week_is_recovered_with_backfill(store: Store, node: Node) -> None:
    out = cli(
        "backfill",
        "weekly-summary",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-14",
        "--json",
        database=store.url,
    ).stdout
    runs = json.loads(out)
    assert [r["scheduled_for"] for r in runs] == ["2025-01-06T06:00:00Z", "2025-01-13T06:00:00Z"]
    for run in runs:
        assert eventually(lambda r=run: finished(store, r["id"]), timeout=60) is RunState.SUCCEEDED
    first = json.loads(store.get_artifact(runs[0]["id"], "summary-2025-01-06.json") or b"{}")
    second = json.loads(store.get_artifact(runs[1]["id"], "summary-2025-01-13.json") or b"{}")
    assert (first["week_start"], first["prompts_created"]) == ("2024-12-30", 2)
    assert (second["week_start"], second["prompts_created"]) == ("2025-01-06", 1)
