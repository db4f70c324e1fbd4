"""Applying a config file's jobs to the store on start (`Service.reconcile`):
added, changed, disabled when they leave the file and back when they return,
the paused state the file declares, and jobs made through the API left alone."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from clocktower.config import ConfigError, load_config
from clocktower.node import FileJobs, apply_file
from clocktower.service import ReconcileReport, Service
from clocktower.store import Store


def write(path: Path, jobs: str) -> Path:
    path.write_text(textwrap.dedent(jobs))
    return path


def apply(service: Service, path: Path | str) -> ReconcileReport:
    cfg = load_config(path, env={})
    assert cfg.source is not None
    report = apply_file(service, FileJobs(cfg.source, dict(cfg.jobs), cfg.paused, cfg.enabled))
    assert report is not None
    return report


def paused(store: Store, job_id: str) -> bool:
    return store.get_job(job_id).paused


TWO = """
[jobs.a]
command = "true"
cron = "0 3 * * *"

[jobs.b]
command = "true"
cron = "0 4 * * *"
"""


def test_jobs_are_added_changed_and_disabled_with_their_history_kept(
    store: Store, tmp_path: Path
) -> None:
    service = Service(store)
    config = write(tmp_path / "clocktower.toml", TWO)
    assert apply(service, config).added == ["a", "b"]

    write(config, '[jobs.a]\ncommand = "false"\ncron = "0 3 * * *"\n')
    report = apply(service, config)
    assert (report.changed, report.disabled) == (["a"], ["b"])
    assert store.get_job("a").spec.target.command == "false"  # type: ignore[union-attr]
    assert paused(store, "b") and not paused(store, "a")  # kept, not deleted


@pytest.mark.parametrize("change", ["", '\ntimeout = "5m"\n'], ids=["unchanged", "changed"])
def test_a_job_that_comes_back_to_the_file_is_resumed(
    store: Store, tmp_path: Path, change: str
) -> None:
    service = Service(store)
    config = write(tmp_path / "clocktower.toml", TWO)
    apply(service, config)
    write(config, '[jobs.a]\ncommand = "true"\ncron = "0 3 * * *"\n')
    apply(service, config)
    assert paused(store, "b")

    write(config, TWO + change)
    apply(service, config)
    assert not paused(store, "b")


def test_a_job_paused_by_hand_stays_paused_when_the_file_says_nothing(
    store: Store, tmp_path: Path
) -> None:
    service = Service(store)
    config = write(tmp_path / "clocktower.toml", TWO)
    apply(service, config)
    service.pause("a", actor="alice")
    write(config, TWO + '\ntimeout = "5m"\n')  # b changes; a does not
    apply(service, config)
    assert paused(store, "a") and not paused(store, "b")


@pytest.mark.parametrize(
    ("declared", "by_hand", "expected"),
    [
        ("paused = true", "resume", True),
        ("enabled = false", "resume", True),
        ("paused = false", "pause", False),
        ("enabled = true", "pause", False),
    ],
)
def test_the_state_a_file_declares_is_applied_every_time(
    store: Store, tmp_path: Path, declared: str, by_hand: str, expected: bool
) -> None:
    service = Service(store)
    config = write(tmp_path / "clocktower.toml", f'[jobs.a]\ncommand = "true"\n{declared}\n')
    apply(service, config)
    assert paused(store, "a") is expected
    getattr(service, by_hand)("a", actor="alice")  # someone changes it from the dashboard
    apply(service, config)  # the next start applies the same, unchanged file
    assert paused(store, "a") is expected


def test_a_file_job_with_the_id_of_an_api_job_is_refused_and_nothing_is_applied(
    store: Store, tmp_path: Path
) -> None:
    service = Service(store)
    service.create_job({"command": "echo mine"}, job_id="b", actor="alice", source="cli")
    config = write(tmp_path / "clocktower.toml", TWO)

    with pytest.raises(ConfigError) as refused:
        apply(service, config)

    assert str(config.resolve()) in str(refused.value)
    assert "job 'b'" in str(refused.value)
    assert [job.id for job in store.list_jobs()] == ["b"]  # a was not added either
    job = store.get_job("b")
    assert (job.spec.source, job.spec.target.command) == ("cli", "echo mine")  # type: ignore[union-attr]


def test_one_file_is_one_source_however_its_path_is_spelled(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(store)
    (tmp_path / "conf").mkdir()
    (tmp_path / "work").mkdir()
    config = write(tmp_path / "conf" / "clocktower.toml", TWO)
    apply(service, config)

    write(config, '[jobs.a]\ncommand = "true"\ncron = "0 3 * * *"\n')
    monkeypatch.chdir(tmp_path / "work")
    report = apply(service, "../conf/clocktower.toml")
    assert (report.unchanged, report.disabled) == (["a"], ["b"])
