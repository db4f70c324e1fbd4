"""`--json` on the commands that change something: the REST API's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clocktower.api.schemas import DeleteOut, JobOut, RunOut
from clocktower.cli import app
from clocktower.store.migrate import head_revision

runner = CliRunner(env={"CLOCKTOWER_DATABASE": None, "CLOCKTOWER_CONFIG": None})


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'clocktower.db'}"


def ct(*args: str, db: str) -> str:
    result = runner.invoke(app, [*args, "--database", db])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def ct_json(*args: str, db: str) -> Any:
    return json.loads(ct(*args, "--json", db=db))


def test_cancel_prints_the_run(db: str) -> None:
    ct("jobs", "add", "nightly", "--command", "true", db=db)
    ct("trigger", "nightly", db=db)

    run = ct_json("cancel", "1", db=db)

    assert RunOut.model_validate(run).id == 1
    assert run["state"] == "cancelled"
    assert run == ct_json("runs", "nightly", db=db)[0]


def test_pause_and_resume_print_the_job_as_jobs_list_does(db: str) -> None:
    ct("jobs", "add", "nightly", "--command", "true", "--cron", "0 3 * * *", db=db)

    paused = ct_json("jobs", "pause", "nightly", db=db)
    assert JobOut.model_validate(paused).paused is True
    assert [paused] == ct_json("jobs", "list", db=db)

    resumed = ct_json("jobs", "resume", "nightly", db=db)
    assert resumed["paused"] is False
    assert resumed["next_fire_at"] is not None


def test_rm_prints_the_deleted_job_as_the_api_does(db: str) -> None:
    ct("jobs", "add", "nightly", "--command", "true", db=db)

    deleted = ct_json("jobs", "rm", "nightly", db=db)

    assert deleted == {"id": "nightly", "deleted": True, "cancelled_runs": []}
    assert DeleteOut.model_validate(deleted).deleted
    assert ct_json("jobs", "list", db=db) == []


def test_db_upgrade_prints_the_schema_revision(db: str) -> None:
    assert ct_json("db", "upgrade", db=db) == {"revision": head_revision()}


def test_tokens_revoke_prints_the_revoked_token(db: str) -> None:
    ct("tokens", "create", "--name", "ci-bot", db=db)

    assert ct_json("tokens", "revoke", "ci-bot", db=db) == {"name": "ci-bot", "revoked": True}
    (token,) = ct_json("tokens", "list", db=db)
    assert token["revoked_at"] is not None
