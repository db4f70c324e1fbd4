"""Cron next-fire speed: Clocktower against cronsim and croniter, side by side.

Run: .venv/bin/python bench/triggers.py

Two measurements, on the same twelve expressions, in UTC and Europe/Paris:

- successive: N fire times in a row from 2025-01-01 (the next one asked from
  the previous one, as the scheduler does), fire times per second;
- cold: parse an expression and compute its first fire time, from twelve
  start dates (the 1st of each month of 2025, so DST transitions are crossed
  as often as they are in a year). Clocktower's parse cache is cleared before
  every construction, so each one parses from scratch. Zone tables stay
  warm: like zoneinfo's own cache of parsed zone files (which cronsim and
  croniter use too), one is built per zone per process; its one-time cost is
  printed separately.

Before timing, the fire times of the three libraries are compared. Clocktower
and cronsim must agree (a mismatch is printed and the exit status is 1);
croniter's differences are reported, not fatal.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from cronsim import CronSim

from clocktower.triggers.cron import CronTrigger, compile_cron
from clocktower.triggers.zonetable import ZoneTable

EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * *",
    "*/15 * * * *",
    "30 2 * * *",
    "0 9-17 * * 1-5",
    "0 6 * * 1",
    "0 3 * * 0",
    "0 0 1,15 * *",
    "0 18 5 * *",
    "15 10 L * *",
    "0 */2 * * *",
    "45 23 * * 6",
]
ZONES = ["UTC", "Europe/Paris"]
SUCCESSIVE = 2000  # fire times per expression per run
CHECKED = 500  # fire times compared between libraries
REPEAT = 3  # best of


# --------------------------------------------------------------------------- the libraries


def clocktower_times(expr: str, zone: ZoneInfo, start: datetime) -> Iterator[float]:
    trigger = CronTrigger(expr, zone)
    ts: float | None = start.timestamp()
    while True:
        ts = trigger.next_after(ts)
        if ts is None:
            return
        yield ts


def cronsim_times(expr: str, zone: ZoneInfo, start: datetime) -> Iterator[float]:
    for dt in CronSim(expr, start):
        yield dt.timestamp()


def croniter_times(expr: str, zone: ZoneInfo, start: datetime) -> Iterator[float]:
    it = croniter(expr, start)
    while True:
        yield it.get_next(float)


LIBRARIES: dict[str, Callable[[str, ZoneInfo, datetime], Iterator[float]]] = {
    "clocktower": clocktower_times,
    "cronsim": cronsim_times,
    "croniter": croniter_times,
}


def cold_clocktower(expr: str, zone: ZoneInfo, start: datetime, ts: float) -> object:
    compile_cron.cache_clear()  # parse from scratch every time
    return CronTrigger(expr, zone).next_after(ts)


def cold_cronsim(expr: str, zone: ZoneInfo, start: datetime, ts: float) -> object:
    return next(CronSim(expr, start))


def cold_croniter(expr: str, zone: ZoneInfo, start: datetime, ts: float) -> object:
    return croniter(expr, start).get_next(float)


# Each library gets the start in the form it takes: Clocktower epoch seconds,
# cronsim and croniter an aware datetime.
COLD: dict[str, Callable[[str, ZoneInfo, datetime, float], object]] = {
    "clocktower": cold_clocktower,
    "cronsim": cold_cronsim,
    "croniter": cold_croniter,
}


# --------------------------------------------------------------------------- agreement


def first(times: Iterator[float], count: int) -> list[float]:
    out = []
    for ts in times:
        out.append(ts)
        if len(out) == count:
            break
    return out


def check_agreement() -> bool:
    """Compare fire times; print every disagreement. False if cronsim disagrees."""
    agreed = True
    for zone_name in ZONES:
        zone = ZoneInfo(zone_name)
        start = datetime(2025, 1, 1, tzinfo=zone)
        for expr in EXPRESSIONS:
            ours = first(clocktower_times(expr, zone, start), CHECKED)
            for name in ("cronsim", "croniter"):
                theirs = first(LIBRARIES[name](expr, zone, start), CHECKED)
                if theirs != ours:
                    agreed = agreed and name != "cronsim"
                    report_mismatch(name, expr, zone, ours, theirs)
    return agreed


def report_mismatch(
    name: str, expr: str, zone: ZoneInfo, ours: list[float], theirs: list[float]
) -> None:
    index = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b)
    at = [datetime.fromtimestamp(ts, zone).isoformat() for ts in (ours[index], theirs[index])]
    level = "MISMATCH" if name == "cronsim" else "differs"
    print(
        f"  {level}: {name} {expr!r} in {zone.key}, fire #{index + 1}: "
        f"clocktower {at[0]}, {name} {at[1]}"
    )


# --------------------------------------------------------------------------- timing


def timed(run: Callable[[], object]) -> float:
    """Best of REPEAT runs, in seconds, with the garbage collector off."""
    best = float("inf")
    for _ in range(REPEAT):
        gc.disable()
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
        gc.enable()
    return best


def successive_rate(name: str, expr: str, zone: ZoneInfo) -> float:
    start = datetime(2025, 1, 1, tzinfo=zone)
    first(LIBRARIES[name](expr, zone, start), SUCCESSIVE)  # warm up (zone years, caches)
    seconds = timed(lambda: first(LIBRARIES[name](expr, zone, start), SUCCESSIVE))
    return SUCCESSIVE / seconds


def cold_cost(name: str, zone: ZoneInfo) -> float:
    """Mean microseconds for one parse + first fire time."""
    starts = [datetime(2025, month, 1, 12, 34, 56, tzinfo=zone) for month in range(1, 13)]
    stamps = [start.timestamp() for start in starts]
    cold = COLD[name]

    def run() -> None:
        for start, ts in zip(starts, stamps, strict=True):
            for expr in EXPRESSIONS:
                cold(expr, zone, start, ts)

    run()  # warm up
    return timed(run) / (len(starts) * len(EXPRESSIONS)) * 1e6


def zone_table_cost(zone_name: str) -> float:
    """Microseconds to build a zone's table from nothing (once per zone per process)."""
    zone = ZoneInfo(zone_name)
    return timed(lambda: ZoneTable(zone)) * 1e6


# --------------------------------------------------------------------------- report


def row(*cells: object) -> str:
    widths = [14, 16, 13, 13, 13, 12, 13]
    return "".join(
        f"{c:<{w}}" if i < 2 else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    )


def successive_table() -> None:
    print(
        f"\nSuccessive next-fire computations per second ({SUCCESSIVE} in a row, best of {REPEAT})"
    )
    print(
        row("zone", "expression", "clocktower", "cronsim", "croniter", "ct/cronsim", "ct/croniter")
    )
    for zone_name in ZONES:
        zone = ZoneInfo(zone_name)
        totals = dict.fromkeys(LIBRARIES, 0.0)
        for expr in EXPRESSIONS:
            rates = {name: successive_rate(name, expr, zone) for name in LIBRARIES}
            for name, rate in rates.items():
                totals[name] += SUCCESSIVE / rate
            print(rate_row(zone_name, expr, rates))
        mix = {name: SUCCESSIVE * len(EXPRESSIONS) / seconds for name, seconds in totals.items()}
        print(rate_row(zone_name, "mix (all 12)", mix))


def rate_row(zone: str, label: str, rates: dict[str, float]) -> str:
    ours = rates["clocktower"]
    return row(
        zone,
        label,
        f"{ours:,.0f}",
        f"{rates['cronsim']:,.0f}",
        f"{rates['croniter']:,.0f}",
        f"{ours / rates['cronsim']:.1f}x",
        f"{ours / rates['croniter']:.1f}x",
    )


def cold_table() -> None:
    print("\nCold: parse + first fire time, microseconds (mean over 12 expressions x 12 starts)")
    print(row("zone", "", "clocktower", "cronsim", "croniter", "ct/cronsim", "ct/croniter"))
    for zone_name in ZONES:
        zone = ZoneInfo(zone_name)
        costs = {name: cold_cost(name, zone) for name in COLD}
        ours = costs["clocktower"]
        print(
            row(
                zone_name,
                "",
                f"{ours:.1f}",
                f"{costs['cronsim']:.1f}",
                f"{costs['croniter']:.1f}",
                f"{costs['cronsim'] / ours:.1f}x",
                f"{costs['croniter'] / ours:.1f}x",
            )
        )
    print("  (ratios: how many times faster Clocktower is; its parse cache cleared every time)")
    for zone_name in ZONES:
        print(f"  one-time zone table for {zone_name}: {zone_table_cost(zone_name):.0f} us")


def main() -> int:
    began = time.perf_counter()
    print("Checking fire times (first", CHECKED, "of each expression, each zone)...")
    agreed = check_agreement()
    print("  clocktower and cronsim agree" if agreed else "  CLOCKTOWER AND CRONSIM DISAGREE")
    successive_table()
    cold_table()
    print(f"\n(total {time.perf_counter() - began:.0f} s; Python {sys.version.split()[0]})")
    return 0 if agreed else 1


if __name__ == "__main__":
    sys.exit(main())
