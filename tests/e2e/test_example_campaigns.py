"""examples/campaigns: one-off jobs created, edited and deleted by an app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clocktower.model import RunState
from clocktower.store import Store

from .nodes import Node, cli, dump, eventually

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "campaigns"


class App:
    def __init__(self, folder: Path, database: str) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "CLOCKTOWER_DATABASE": database,
            "CAMPAIGNS_OUTBOX": str(folder / "outbox.jsonl"),
            "PYTHONPATH": str(folder),
        }

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "campaigns.py", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def sent(self) -> list[str]:
        outbox = self.folder / "outbox.jsonl"
        if not outbox.exists():
            return []
        return [json.loads(line)["campaign"] for line in outbox.read_text().splitlines()]


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_campaigns_lifecycle(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    shutil.copytree(EXAMPLE, folder)
    app = App(folder, store.url)

    assert app("create", "1", soon(3)) == "scheduled"
    assert app("create", "2", soon(3)) == "scheduled"
    assert app("delete", "2") == "cancelled"
    assert app("create", "3", soon(3600)) == "scheduled"
    assert app("edit", "3", soon(4)) == "scheduled"  # rescheduled from an hour to seconds

    node = Node(store.url, tmp_path / "node.log", name="app", env={"PYTHONPATH": str(folder)})
    try:
        eventually(
            lambda: app("status", "1") == "succeeded" and app("status", "3") == "succeeded",
            timeout=60,
            what="campaigns 1 and 3 sent",
        )
        runs = json.loads(cli("runs", "campaign-1", "--json", database=store.url).stdout)
        assert [r["state"] for r in runs] == ["succeeded"]
        assert runs[0]["result"] == {"recipients": 3, "campaign": "1"}
    finally:
        node.signal(15)
        assert node.wait(60) == 0, dump([node])
        node.stop()
    assert sorted(app.sent()) == ["1", "3"]
    assert app("status", "2") == "cancelled"

    # A campaign whose time passes while the service is down runs once when it is back.
    due = datetime.now(UTC) + timedelta(seconds=1)
    app("create", "4", due.isoformat())
    eventually(lambda: datetime.now(UTC) > due + timedelta(seconds=1), what="time to pass")
    assert app("status", "4") == "scheduled"
    back = Node(store.url, tmp_path / "back.log", name="back", env={"PYTHONPATH": str(folder)})
    try:
        eventually(lambda: app("status", "4") == "succeeded", timeout=60, what="campaign 4")
    finally:
        back.stop()
    assert sorted(app.sent()) == ["1", "3", "4"]
    assert [r.state for r in store.list_runs(job_id="campaign-4")] == [RunState.SUCCEEDED]
