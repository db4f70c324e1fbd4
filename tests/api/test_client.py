"""clocktower.client.Client against a real node: the campaign case end to end
(schedule once, reschedule, cancel), trigger and wait, and the errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from clocktower.client import ApiError, Client, Conflict, NotFound, RemoteRun, Unauthorized
from tests.api.helpers import LiveNode, live_node

T = TypeVar("T")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    tmp = tmp_path_factory.mktemp("client")
    with live_node(f"sqlite:///{tmp / 'clocktower.db'}", tmp) as running:
        yield running


@pytest.fixture
def client(node: LiveNode) -> Iterator[Client]:
    with Client(node.url) as client:
        yield client


def eventually(probe: Callable[[], T | None], what: str, within: float = 20.0) -> T:
    """The first non-empty answer of `probe`, asked until `within` seconds pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {within}s")


def test_a_campaign_is_scheduled_moved_and_cancelled(client: Client) -> None:
    send_at = datetime.now(UTC) + timedelta(days=3)
    job = client.schedule_once("campaign-7", at=send_at, command="echo send 7")
    assert job.next_fire_at == send_at
    assert client.schedule_once("campaign-7", at=send_at, command="echo send 7").id == job.id
    with pytest.raises(Conflict) as other:
        client.schedule_once("campaign-7", at=send_at + timedelta(hours=1), command="echo x")
    assert other.value.code == "job_exists"

    later = send_at + timedelta(days=1)
    moved = client.reschedule("campaign-7", later)
    assert moved.next_fire_at == later
    assert moved.definition["command"] == "echo send 7"

    assert client.cancel("campaign-7") == []
    with pytest.raises(NotFound) as gone:
        client.get_job("campaign-7")
    assert gone.value.code == "job_not_found"


def test_a_campaign_whose_time_just_passed_runs(client: Client, tmp_path: Path) -> None:
    marker = tmp_path / "sent"
    client.schedule_once(
        "campaign-8", at=datetime.now(UTC) - timedelta(seconds=5), command=f"touch {marker}"
    )
    runs = eventually(lambda: client.runs("campaign-8"), "the campaign's run")
    done = client.wait(runs[0].id, timeout=20, poll=0.05)
    assert done.succeeded and marker.exists()
    assert done.scheduled_for is not None


def test_trigger_and_wait(client: Client) -> None:
    client.create_job("report", command="echo report; exit 3")
    run = client.trigger("report", payload={"week": 1})
    assert isinstance(run, RemoteRun) and run.state == "scheduled"
    done = client.wait(run.id, timeout=20, poll=0.05)
    assert (done.final, done.state, done.raw["exit_code"]) == (True, "failed", 3)
    assert client.get_run(run.id).error == done.error


def test_wait_gives_up_after_its_timeout(client: Client, tmp_path: Path) -> None:
    go = tmp_path / "go"
    client.create_job("slow", command=f"while [ ! -e {go} ]; do sleep 0.05; done")
    run = client.trigger("slow")
    with pytest.raises(TimeoutError, match=f"run {run.id} is still"):
        client.wait(run.id, timeout=0, poll=0.01)
    go.touch()
    assert client.wait(run.id, timeout=20, poll=0.05).succeeded


def test_errors_carry_the_servers_code(client: Client, node: LiveNode) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_run(999_999)
    assert (missing.value.status, missing.value.code) == (404, "run_not_found")
    with pytest.raises(ApiError) as invalid:
        client.create_job("bad", command="x", cron="61 * * * *")
    assert (invalid.value.code, invalid.value.field) == ("invalid_spec", "cron")
    with pytest.raises(ValueError, match="no time zone"):
        client.schedule_once("naive", at=datetime(2030, 1, 1), command="x")
    with Client(node.url, token="ct_wrong") as stranger, pytest.raises(Unauthorized):
        stranger.get_run(1)
