"""The Python API for applications that embed Clocktower."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clocktower.embed import Clocktower, reference
from clocktower.model import InvalidSpec, PythonTarget, TriggerKind


def send(campaign: str, ctx: Any = None) -> str:
    return campaign


def test_schedule_once_reschedule_and_cancel(store_url: str) -> None:
    ct = Clocktower(store_url)
    try:
        when = datetime.now(UTC) + timedelta(hours=1)
        job = ct.schedule_once("campaign-1", at=when, call=send, args=["1"])
        assert job.next_fire_at == when
        assert isinstance(job.spec.target, PythonTarget)
        assert job.spec.target.call == "tests.test_embed:send"
        assert ct.status("campaign-1") == "scheduled"
        later = when + timedelta(hours=1)
        assert ct.reschedule("campaign-1", later).next_fire_at == later
        ct.cancel("campaign-1")
        assert ct.status("campaign-1") == "cancelled"
    finally:
        ct.close()


def test_the_job_decorator_registers_a_schedule(store_url: str) -> None:
    ct = Clocktower(store_url)
    try:
        decorated = ct.job("nightly-send", schedule="daily at 03:00")(send)
        assert decorated is send
        job = ct.store.get_job("nightly-send")
        assert job.spec.source == "python"
        assert job.next_fire_at is not None and job.next_fire_at.hour == 3
        run = ct.trigger("nightly-send", payload={"x": 1})
        assert run.trigger is TriggerKind.MANUAL and run.payload == {"x": 1}
        assert ct.status("nightly-send") == "scheduled"
    finally:
        ct.close()


def test_functions_the_scheduler_cannot_import_are_refused() -> None:
    def local() -> None: ...

    with pytest.raises(InvalidSpec, match="not a module-level function"):
        reference(local)
    local.__module__ = "__main__"
    with pytest.raises(InvalidSpec, match="__main__"):
        reference(local)
