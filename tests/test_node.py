"""What a node does to the stored jobs when it starts."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from clocktower.node import mark_broken_jobs
from clocktower.service import Service
from clocktower.store import Store


def test_a_python_job_that_no_longer_imports_is_kept_and_marked_broken(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "ct_nightly_tasks.py"
    module.write_text("def run():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    service = Service(store)
    service.create_job(
        {"call": "ct_nightly_tasks:run", "cron": "0 3 * * *"}, job_id="py", actor="t"
    )
    service.create_job({"command": "true", "cron": "0 3 * * *"}, job_id="sh", actor="t")
    assert store.get_job("py").broken is None

    module.unlink()  # a deploy removed the module
    importlib.invalidate_caches()
    mark_broken_jobs(service)
    broken = store.get_job("py")
    assert broken.broken == "cannot import 'ct_nightly_tasks': no such module"
    assert [j.id for j in store.list_jobs()] == ["py", "sh"]  # kept, never deleted
    assert store.get_job("sh").broken is None

    module.write_text("def run():\n    pass\n")  # and the next deploy brought it back
    importlib.invalidate_caches()
    mark_broken_jobs(service)
    assert store.get_job("py").broken is None
