"""How the dashboard reads: durations, relative times, sparklines, the week
calendar (fire times from the triggers, in the viewer's zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from clocktower.model import Run, RunState, TriggerKind
from clocktower.service import Service
from clocktower.store import Store
from clocktower.store.views import Outcome
from clocktower.web.calendar import build_week
from clocktower.web.present import duration, history_chart, relative, sparkline, when
from tests.conftest import FakeClock

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday


def test_durations() -> None:
    assert [duration(s) for s in (None, 0.0123, 3.21, 65, 3725, 2 * 86400 + 7200)] == [
        "—",
        "0.01s",
        "3.2s",
        "1m 05s",
        "1h 02m",
        "2d 2h",
    ]


def test_relative_times() -> None:
    assert relative(NOW + timedelta(seconds=2), NOW) == "now"
    assert relative(NOW + timedelta(seconds=30), NOW) == "in 30 s"
    assert relative(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert relative(NOW + timedelta(hours=3), NOW) == "in 3 h"
    assert relative(NOW + timedelta(hours=16, minutes=12), NOW) == "in 16.2 h"
    assert relative(NOW - timedelta(days=12), NOW) == "12 days ago"
    tag = str(when(NOW + timedelta(minutes=5), NOW))
    assert 'datetime="2025-01-06T12:05:00Z"' in tag and "2025-01-06 12:05:00 UTC" in tag


def outcome(run_id: int, state: RunState, took: float) -> Outcome:
    return Outcome(run_id, "j", state, NOW + timedelta(seconds=took), took)


def test_sparkline_colours_by_state_and_sums_up() -> None:
    runs = [outcome(3, RunState.FAILED, 4), outcome(2, RunState.SUCCEEDED, 2)]
    svg = str(sparkline([*runs, outcome(1, RunState.SUCCEEDED, 1)]))
    assert svg.count('<path class="ok"') == 1 and svg.count('<path class="bad"') == 1
    assert svg.index('class="ok"') < svg.index('class="bad"')  # oldest on the left
    # two bars of one colour in one path; the failed one is the tallest (4 s of 22 px)
    assert svg.count("z") == 3 and 'class="bad" d="M20.0 0.0h8.0v22.0h-8.0z"' in svg
    assert "<title>last 3 runs: 2 succeeded, 1 failed; longest 4.0s</title>" in svg
    assert "no runs yet" in str(sparkline([]))


def test_history_chart_has_a_tooltip_per_run() -> None:
    def run(run_id: int, state: RunState, took: float) -> Run:
        return Run(
            run_id, "j", NOW, TriggerKind.SCHEDULE, state, started_at=NOW,
            finished_at=NOW + timedelta(seconds=took),
        )  # fmt: skip

    running = Run(4, "j", NOW, TriggerKind.SCHEDULE, RunState.RUNNING, started_at=NOW)
    svg = str(history_chart([running, run(3, RunState.FAILED, 4), run(2, RunState.SUCCEEDED, 2)]))
    assert svg.count("<rect") == 2  # finished runs only
    assert svg.index("run 2: succeeded in 2.0s") < svg.index("run 3: failed in 4.0s")
    assert "no runs yet" in str(history_chart([running]))


def test_the_week_ahead(store: Store, clock: FakeClock) -> None:
    service = Service(store, clock=clock)
    jobs = {
        "nightly": {"command": "x", "cron": "0 3 * * *"},
        "monday-report": {"command": "x", "schedule": "mondays at 06:00"},
        "paris-evening": {"command": "x", "cron": "0 22 * * *", "tz": "Europe/Paris"},
        "often": {"command": "x", "every": "5m"},
        "paused": {"command": "x", "cron": "0 9 * * *", "paused": True},
        "manual": {"command": "x"},
    }
    for job_id, definition in jobs.items():
        service.create_job(definition, job_id=job_id, actor="t")
    week = build_week(service, NOW, ZoneInfo("UTC"))
    assert [d.day.isoformat() for d in week.days][::6] == ["2025-01-06", "2025-01-12"]
    today = [(e.at.strftime("%H:%M"), e.job_id) for e in week.days[0].entries]
    assert today == [("21:00", "paris-evening")]
    tuesday = [(e.at.strftime("%H:%M"), e.job_id) for e in week.days[1].entries]
    assert tuesday == [("03:00", "nightly"), ("21:00", "paris-evening")]
    assert [f.job_id for f in week.frequent] == ["often"]
    assert "5 minutes" in week.frequent[0].schedule
    assert all(e.job_id not in ("paused", "manual") for d in week.days for e in d.entries)
    assert not week.truncated
    sunday = week.days[6]
    assert "monday-report" not in [e.job_id for e in sunday.entries]

    tokyo = build_week(service, NOW, ZoneInfo("Asia/Tokyo"))  # 21:00 there, Monday
    assert tokyo.days[0].day.isoformat() == "2025-01-06"
    assert tokyo.days[0].entries == []
    tuesday = [(e.at.strftime("%H:%M"), e.job_id) for e in tokyo.days[1].entries]
    assert tuesday == [("06:00", "paris-evening"), ("12:00", "nightly")]
