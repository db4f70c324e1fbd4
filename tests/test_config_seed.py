"""A clocktower.toml in the shape of the seed systems parses to the jobs they need."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from clocktower.config import load_config
from clocktower.model import (
    CommandTarget,
    HttpTarget,
    PythonTarget,
    TriggerSpec,
    WorkflowStep,
    WorkflowTarget,
)
from clocktower.spec import job_from_stored, job_to_mapping

# --------------------------------------------------------------------------- the seed systems

SEED_SYSTEMS = """
[server]
database = "sqlite:///clocktower.db"
timezone = "UTC"

[defaults]
timeout = "10m"

# 1. Heroku Scheduler
[jobs.cleanup-deleted-prompts]
command = "python manage.py cleanup_deleted_prompts"
schedule = "daily at 03:00"
timeout = "15m"
env = { DATABASE_URL = "${DATABASE_URL}" }

[jobs.detect-orphans-daily]
command = "python manage.py detect_orphaned_files --days 7"
schedule = "daily at 04:00"

[jobs.detect-orphans-weekly]
command = "python manage.py detect_orphaned_files --days 90"
cron = "0 5 * * SUN"

[jobs.weekly-summary]
command = "node scripts/weekly-summary.js"
schedule = "mondays at 06:00"
tz = "UTC"

# 2. A one-off campaign
[jobs.campaign-42]
url = "https://app.example.com/api/campaigns/42/send"
method = "POST"
at = 2030-06-01T09:00:00Z

# 3. The cron orchestrator
[jobs.refresh-feeds]
url = "https://app.example.com/api/cron/refresh-feeds"
method = "POST"
headers = { Authorization = "Bearer ${CRON_SECRET}" }
timeout = "2m"
success_field = "success"

[jobs.hourly]
every = "1h"
steps = [
  { job = "refresh-feeds", timeout = "2m" },
  { name = "warm-cache", url = "https://app.example.com/api/cron/warm", timeout = "30s" },
]
continue_on_failure = true
description = "The hourly set, in order"

# 4. The monthly batch service
[jobs.monthly-batch]
call = "formafriend.batch:process_month"
kwargs = { batch_size = 500, workers = 4 }
schedule = "monthly on the 5th at 18:00"
tz = "Europe/Paris"
isolation = "process"
memory_limit = "512MB"
timeout = "1h"
retries = 3
retry_delay = "1m"

[jobs.health-check]
url = "https://app.example.com/health"
every = "5m"
expect_status = 200
enabled = false
"""


def test_seed_systems_parse_as_expected(tmp_path: Path) -> None:
    path = tmp_path / "clocktower.toml"
    path.write_text(textwrap.dedent(SEED_SYSTEMS), encoding="utf-8")
    config = load_config(path, env={"CLOCKTOWER_DATABASE": "sqlite:///other.db"})
    jobs = config.jobs
    assert config.server.database == "sqlite:///other.db"
    assert list(jobs) == [
        "cleanup-deleted-prompts",
        "detect-orphans-daily",
        "detect-orphans-weekly",
        "weekly-summary",
        "campaign-42",
        "refresh-feeds",
        "hourly",
        "monthly-batch",
        "health-check",
    ]

    cleanup = jobs["cleanup-deleted-prompts"]
    assert cleanup.target == CommandTarget(
        "python manage.py cleanup_deleted_prompts",
        env={"DATABASE_URL": "${DATABASE_URL}"},
        cwd=str(path.parent.absolute()),  # commands run in the config file's folder
    )
    assert cleanup.trigger == TriggerSpec("schedule", "daily at 03:00", tz="UTC")
    assert cleanup.policies.timeout == 900.0
    assert jobs["detect-orphans-weekly"].policies.timeout == 600.0

    campaign = jobs["campaign-42"]
    assert campaign.trigger == TriggerSpec("at", "2030-06-01T09:00:00+00:00", tz="UTC")

    feeds = jobs["refresh-feeds"]
    assert feeds.target == HttpTarget(
        url="https://app.example.com/api/cron/refresh-feeds",
        method="POST",
        headers={"Authorization": "Bearer ${CRON_SECRET}"},
        success_field="success",
    )
    assert feeds.trigger is None  # run by the workflow or by hand
    assert jobs["hourly"].target == WorkflowTarget(
        steps=(
            WorkflowStep(name="refresh-feeds", job="refresh-feeds", timeout=120.0),
            WorkflowStep(
                name="warm-cache",
                target=HttpTarget(url="https://app.example.com/api/cron/warm"),
                timeout=30.0,
            ),
        ),
        continue_on_failure=True,
    )

    batch = jobs["monthly-batch"]
    assert batch.target == PythonTarget(
        call="formafriend.batch:process_month",
        kwargs={"batch_size": 500, "workers": 4},
        isolation="process",
        memory_limit=512_000_000,
    )
    assert batch.trigger == TriggerSpec("schedule", "monthly on the 5th at 18:00", "Europe/Paris")
    assert (batch.policies.timeout, batch.policies.retries) == (3600.0, 3)
    assert jobs["health-check"].target == HttpTarget(
        url="https://app.example.com/health", expect_status=(200,)
    )
    assert config.paused == {"health-check"}


def test_seed_systems_survive_the_store(tmp_path: Path) -> None:
    path = tmp_path / "clocktower.toml"
    path.write_text(SEED_SYSTEMS, encoding="utf-8")
    for spec in load_config(path, env={}).jobs.values():
        stored = json.loads(json.dumps(job_to_mapping(spec)))
        assert job_from_stored(stored) == spec
