"""How things read on the dashboard: times, durations, states, sparklines.

Pure functions of their arguments (the time is passed in), used as Jinja
filters and globals. Markup built here escapes every value it interpolates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape

from clocktower.model import Run
from clocktower.store.views import Outcome

GOOD = {"succeeded", "ok", "ready"}
BAD = {"failed", "timed_out", "lost", "unreachable"}
QUIET = {"skipped", "missed", "cancelled"}
LIVE = {"scheduled", "pending", "running"}


def state_class(state: object) -> str:
    name = str(state)
    if name in GOOD:
        return "ok"
    if name in BAD:
        return "bad"
    if name in LIVE:
        return "live"
    return "quiet"


def absolute(value: datetime | None) -> str:
    if value is None:
        return "—"
    # isoformat costs half of strftime, and a jobs page shows a hundred of these.
    return value.astimezone(UTC).isoformat(" ", "seconds")[:19] + " UTC"


def duration(seconds: float | None) -> str:
    """3.2s, 4m 05s, 2h 10m, 3d 4h."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def relative(value: datetime | None, now: datetime) -> str:
    """in 5 min, 3 h ago, just now."""
    if value is None:
        return "—"
    delta = (value - now).total_seconds()
    span = abs(delta)
    if span < 5:
        return "now"
    if span < 60:
        text = f"{int(span)} s"
    elif span < 3600:
        text = f"{int(span // 60)} min"
    elif span < 86400 * 2:
        text = f"{span / 3600:.1f} h".replace(".0 h", " h")
    else:
        text = f"{int(span // 86400)} days"
    return f"in {text}" if delta > 0 else f"{text} ago"


def when(value: datetime | None, now: datetime) -> Markup:
    """A relative time with the absolute one in a tooltip, as a <time> element."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    iso = value.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, absolute(value), relative(value, now)
    )


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _bars(
    runs: Sequence[Outcome], width: int, height: int
) -> list[tuple[str, float, float, float, float]]:
    """(colour, x, y, width, height) of each run's bar, oldest on the left."""
    longest = max((r.duration or 0.0) for r in runs) or 1.0
    step = width / max(len(runs), 10)
    bars = []
    for i, run in enumerate(runs):
        h = max(2.0, height * (run.duration or 0.0) / longest)
        bars.append((state_class(run.state), i * step, height - h, step * 0.8, h))
    return bars


def sparkline(outcomes: Sequence[Outcome], *, width: int = 100, height: int = 22) -> Markup:
    """The jobs table's bars of the latest runs' durations, oldest on the left,
    coloured by state: one path per colour and one summary for the whole
    (a page of jobs draws a thousand bars; per-bar detail is on the job's page).

    Built with plain formatting: every value interpolated is a number, a run
    state or a formatted duration, none of which can hold markup."""
    runs = list(reversed(outcomes))
    if not runs:
        return Markup('<span class="muted">no runs yet</span>')
    paths: dict[str, list[str]] = {}
    for colour, x, y, w, h in _bars(runs, width, height):
        paths.setdefault(colour, []).append(f"M{x:.1f} {y:.1f}h{w:.1f}v{h:.1f}h-{w:.1f}z")
    states = Counter(str(run.state) for run in runs)
    longest = max((r.duration or 0.0) for r in runs)
    summary = (
        f"last {len(runs)} runs: {', '.join(f'{n} {s}' for s, n in states.most_common())}; "
        f"longest {duration(longest)}"
    )
    body = "".join(f'<path class="{colour}" d="{"".join(d)}"/>' for colour, d in paths.items())
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{summary}"><title>{summary}</title>{body}</svg>'
    )


def history_chart(runs: Sequence[Run], *, width: int = 600, height: int = 80) -> Markup:
    """The bigger chart on a job's page: one bar per run, newest on the right,
    each with its own tooltip."""
    outcomes = [
        Outcome(r.id, r.job_id, r.state, r.finished_at, r.duration) for r in runs if r.state.final
    ]
    ordered = list(reversed(outcomes))
    if not ordered:
        return Markup('<span class="muted">no runs yet</span>')
    bars = [
        f'<rect class="{colour}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
        f"<title>run {run.id}: {run.state} in {duration(run.duration)}</title></rect>"
        for run, (colour, x, y, w, h) in zip(ordered, _bars(ordered, width, height), strict=True)
    ]
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="durations of the last {len(ordered)} runs">{"".join(bars)}</svg>'
    )


def output_lines(lines: Sequence[tuple[float, str, str]]) -> Markup:
    """Output lines as spans; stderr marked."""
    return Markup("").join(
        Markup('<span class="{}">{}</span>\n').format("err" if s == "stderr" else "out", t)
        for _, s, t in lines
    )


def badge(state: object) -> Markup:
    return Markup('<span class="badge {}">{}</span>').format(
        state_class(state), escape(str(state)).replace("_", " ")
    )


def page_query(filters: Any, offset: int) -> str:
    """The jobs page's query string with another offset."""
    fields = ("text", "tag", "kind", "state", "sort")
    params = {name: getattr(filters, name) for name in fields if getattr(filters, name)}
    if offset:
        params["offset"] = offset
    return urlencode(params)
