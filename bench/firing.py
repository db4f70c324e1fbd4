"""Firing speed: Clocktower on SQLite against APScheduler 3, side by side, in one run.

Run: .venv/bin/python bench/firing.py            (defaults: the sizes of issue 3)
     .venv/bin/python bench/firing.py --quick    (smaller sizes, about two minutes)

Every peer runs in a process of its own, so memory and CPU do not mix:
Clocktower as a node (`clocktower.node.serve` on a SQLite file that this
process seeds and then reads), APScheduler 3 as an AsyncIOScheduler with a
MemoryJobStore and with a SQLAlchemyJobStore on SQLite in WAL mode, and a bare
`asyncio.create_subprocess_exec` loop for command jobs. Scenarios:

(a) burst: N no-op Python jobs due at the same instant. Lateness (the target's
    own start minus its fire time) p50/p99/max, and the time until every run
    is recorded (for Clocktower: its run row final in the store).
(b) every: N jobs every second for S seconds: missed fire times, lateness p99.
(c) commands: N command jobs (`true`) every second for S seconds: runs recorded
    per second, against a bare spawn loop doing the same work with as many
    processes at a time as the node has slots; then both at capacity.
(d) startup: N jobs in the store: time from process start until the
    scheduler's loop has run once, and its resident memory then.

Ratios are Clocktower / peer: below 1 is better for times, above 1 for rates.
The numbers are also written as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from clocktower.engine.policies import first_fire_after
from clocktower.spec import job_to_mapping, parse_job
from clocktower.store import Store
from clocktower.store.schema import jobs
from clocktower.triggers import compile_trigger

HERE = Path(__file__).resolve().parent
CHILDREN = HERE / "firing_children.py"
SLOTS = 4 * (os.cpu_count() or 1)  # the default max_concurrent_runs
FINAL = ("succeeded", "failed", "timed_out", "cancelled", "lost", "skipped", "missed")

# --------------------------------------------------------------------------- numbers


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def lateness_stats(lateness: Sequence[float]) -> dict[str, float]:
    return {
        "lateness_p50_ms": percentile(lateness, 50) * 1000,
        "lateness_p99_ms": percentile(lateness, 99) * 1000,
        "lateness_max_ms": (max(lateness) if lateness else float("nan")) * 1000,
        "early": sum(1 for x in lateness if x < 0),
    }


# --------------------------------------------------------------------------- processes


@dataclass
class Child:
    proc: subprocess.Popen[str]
    spawned_at: float
    log: Path

    def read_event(self, name: str, timeout: float) -> dict[str, Any]:
        """The next JSON line whose event is `name` (the child's stdout)."""
        deadline = time.time() + timeout
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                event: dict[str, Any] = json.loads(line)
                if event.get("event") == name:
                    return event
        tail = self.log.read_text()[-3000:] if self.log.exists() else ""
        raise RuntimeError(f"no {name!r} from {self.proc.args!r}; its log ends:\n{tail}")

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn_child(role: str, params: dict[str, Any], workdir: Path) -> Child:
    log = workdir / f"{role}.log"
    began = time.time()
    proc = subprocess.Popen(
        [sys.executable, str(CHILDREN), role, json.dumps(params)],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        cwd=workdir,
    )
    return Child(proc, began, log)


def run_child(role: str, params: dict[str, Any], workdir: Path, timeout: float) -> dict[str, Any]:
    child = spawn_child(role, params, workdir)
    try:
        return child.read_event("result", timeout)
    finally:
        child.stop()


# --------------------------------------------------------------------------- clocktower


@dataclass
class Workspace:
    dir: Path
    db: Path

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"


@contextmanager
def workspace(name: str) -> Iterator[Workspace]:
    with tempfile.TemporaryDirectory(prefix=f"ct-bench-{name}-") as tmp:
        yield Workspace(Path(tmp), Path(tmp) / "clocktower.db")


def seed(url: str, rows: Iterator[tuple[str, dict[str, Any], datetime | None]]) -> int:
    """Insert job rows as the service writes them, many per statement.

    Each definition is validated by the same parser the service uses; the rows
    then go in with executemany instead of one transaction per job.
    """
    store = Store(url)
    store.upgrade()
    now = datetime.now(UTC)
    count = 0
    batch: list[dict[str, Any]] = []
    cache: dict[str, tuple[dict[str, Any], str]] = {}
    with store.db.engine.begin() as conn:
        for job_id, data, next_fire in rows:
            key = json.dumps(data, sort_keys=True)
            if key not in cache:
                spec = parse_job(data, job_id="template").spec
                cache[key] = (job_to_mapping(spec), spec.target.kind)
            mapping, kind = cache[key]
            batch.append(
                {
                    "id": job_id,
                    "spec": {**mapping, "id": job_id},
                    "kind": kind,
                    "next_fire_at": next_fire,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) == 20_000:
                conn.execute(insert(jobs), batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(insert(jobs), batch)
            count += len(batch)
    store.close()
    return count


def start_node(ws: Workspace, args: argparse.Namespace, role: str = "clocktower") -> Child:
    params = {
        "database": ws.url,
        "slots": args.slots,
        "artifacts": str(ws.dir / "artifacts"),
        "log_level": args.node_log_level,
    }
    return spawn_child(role, params, ws.dir)


def count_final(db: Path, before: datetime | None = None) -> int:
    query = f"SELECT count(*) FROM runs WHERE state IN ({','.join('?' * len(FINAL))})"
    params: list[Any] = list(FINAL)
    if before is not None:
        query += " AND scheduled_for < ?"
        params.append(sql_time(before))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute(query, params).fetchone()[0])


def wait_final(db: Path, expected: int, timeout: float, before: datetime | None = None) -> float:
    """Poll the store until `expected` runs are final; the instant it saw them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if count_final(db, before) >= expected:
            return time.time()
        time.sleep(0.02)
    return float("nan")


def sql_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def read_runs(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT job_id, scheduled_for, state, result, finished_at FROM runs"
        ).fetchall()
    return [
        {
            "job_id": r["job_id"],
            "fire": parse_time(r["scheduled_for"]).timestamp(),
            "state": r["state"],
            "start": _json(r["result"]),
            "finished": parse_time(r["finished_at"]).timestamp() if r["finished_at"] else None,
        }
        for r in rows
    ]


def _json(value: Any) -> Any:
    # SQLite gives a JSON column numeric affinity: a number comes back as one.
    return json.loads(value) if isinstance(value, str | bytes) else value


def whole_second_after(seconds: float) -> datetime:
    return datetime.fromtimestamp(int(time.time() + seconds) + 1, UTC)


# --------------------------------------------------------------------------- (a) burst


def burst_clocktower(args: argparse.Namespace) -> dict[str, Any]:
    n = args.burst_jobs
    with workspace("burst") as ws:
        fire = whole_second_after(args.lead)
        data = {"call": f"firing_targets:{args.target}", "at": fire.isoformat()}
        seed(ws.url, ((f"job-{i}", data, fire) for i in range(n)))
        node = start_node(ws, args)
        try:
            node.read_event("ready", 60)
            done_at = wait_final(ws.db, n, timeout=fire.timestamp() - time.time() + args.timeout)
        finally:
            node.stop()
        runs = read_runs(ws.db)
    ok = [r for r in runs if r["state"] == "succeeded"]
    return {
        **lateness_stats([r["start"] - r["fire"] for r in ok]),
        "recorded_s": done_at - fire.timestamp(),
        "executed": len(ok),
        "missed": n - len(ok),
        "persisted": len(ok),
        "distinct_jobs": len({r["job_id"] for r in ok}),
        "runs": len(runs),
    }


def burst_apscheduler(args: argparse.Namespace, store: str) -> dict[str, Any]:
    with workspace("burst-aps") as ws:
        params = {
            "scenario": "burst",
            "store": store,
            "misfire_grace": args.aps_misfire_grace,
            "path": str(ws.dir / "aps.db"),
            "jobs": args.burst_jobs,
            "target": args.target,
            "lead": 2.0,
            "timeout": args.timeout,
        }
        result = run_child("apscheduler", params, ws.dir, timeout=600)
    executed = result["executed"]
    return {
        **lateness_stats([start - fire for fire, start, _ in executed]),
        "recorded_s": max((t for _, _, t in executed), default=float("nan")) - result["first_fire"],
        "persisted": None,  # APScheduler keeps no record of runs
        "executed": len(executed),
        "missed": result["missed"] + result["max_instances"],
        "errors": result["errors"],
    }


# --------------------------------------------------------------------------- (b) every second


def every_clocktower(args: argparse.Namespace) -> dict[str, Any]:
    n, seconds = args.every_jobs, args.every_seconds
    with workspace("every") as ws:
        first = whole_second_after(args.lead)
        end = first + timedelta(seconds=seconds)
        data = {"call": f"firing_targets:{args.target}", "cron": "* * * * * *"}
        seed(ws.url, ((f"job-{i}", data, first) for i in range(n)))
        node = start_node(ws, args)
        try:
            node.read_event("ready", 60)
            wait_final(ws.db, n * seconds, end.timestamp() - time.time() + args.timeout, end)
        finally:
            node.stop()
        runs = read_runs(ws.db)
    in_window = [r for r in runs if first.timestamp() <= r["fire"] < end.timestamp()]
    ok = [r for r in in_window if r["state"] == "succeeded"]
    return {
        **lateness_stats([r["start"] - r["fire"] for r in ok]),
        "expected": n * seconds,
        "executed": len(ok),
        "missed": n * seconds - len(ok),
        "states": _count_states(in_window),
    }


def _count_states(runs: list[dict[str, Any]]) -> dict[str, int]:
    states: dict[str, int] = {}
    for run in runs:
        states[run["state"]] = states.get(run["state"], 0) + 1
    return states


def every_apscheduler(args: argparse.Namespace, store: str) -> dict[str, Any]:
    n, seconds = args.every_jobs, args.every_seconds
    with workspace("every-aps") as ws:
        params = {
            "scenario": "every",
            "store": store,
            "misfire_grace": args.aps_misfire_grace,
            "path": str(ws.dir / "aps.db"),
            "jobs": n,
            "seconds": seconds,
            "target": args.target,
            "lead": 2.0,
            "timeout": seconds + args.timeout,
        }
        result = run_child("apscheduler", params, ws.dir, timeout=600)
    first = result["first_fire"]
    ok = [(f, s) for f, s, _ in result["executed"] if first <= f < first + seconds]
    return {
        **lateness_stats([s - f for f, s in ok]),
        "expected": n * seconds,
        "executed": len(ok),
        "missed": n * seconds - len(ok),
    }


# --------------------------------------------------------------------------- (c) commands


def commands_clocktower(args: argparse.Namespace, jobs: int) -> dict[str, Any]:
    """`jobs` command jobs every second. At the issue's load the rate is the
    offered load if the node keeps up; with more jobs than it can run, the
    rate is what it finished within the window."""
    seconds = args.command_seconds
    with workspace("commands") as ws:
        first = whole_second_after(args.lead)
        end = first + timedelta(seconds=seconds)
        data = {"command": "true", "cron": "* * * * * *"}
        seed(ws.url, ((f"cmd-{i}", data, first) for i in range(jobs)))
        node = start_node(ws, args)
        try:
            node.read_event("ready", 60)
            done_at = wait_final(
                ws.db, jobs * seconds, end.timestamp() - time.time() + args.timeout, end
            )
        finally:
            node.stop()
        runs = read_runs(ws.db)
    in_window = [r for r in runs if first.timestamp() <= r["fire"] < end.timestamp()]
    ok = sum(1 for r in in_window if r["state"] == "succeeded")
    finished = sum(
        1
        for r in runs
        if r["state"] == "succeeded" and first.timestamp() <= (r["finished"] or 0) < end.timestamp()
    )
    took = max(seconds, done_at - first.timestamp())
    return {
        "per_second": ok / took if ok == jobs * seconds else finished / seconds,
        "recorded": ok,
        "states": _count_states(in_window),
    }


def commands_bare(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    with workspace("spawn") as ws:
        params = {
            "mode": mode,
            "jobs": args.command_jobs,
            "seconds": args.command_seconds,
            "slots": args.slots,
            "command": "true",
        }
        result = run_child("spawn", params, ws.dir, timeout=args.command_seconds + 600)
    first, done = result["first_fire"], result["done"]
    took = max(args.command_seconds, max((t for _, t in done), default=first) - first)
    return {"per_second": len(done) / took, "recorded": len(done)}


# --------------------------------------------------------------------------- (d) startup


def daily_rows(n: int) -> Iterator[tuple[str, dict[str, Any], datetime | None]]:
    """Daily command jobs spread over the hours that are not near now."""
    now = datetime.now(UTC)
    nexts: dict[str, datetime | None] = {}
    for i in range(n):
        hour = (now.hour + 2 + (i // 60) % 20) % 24
        expr = f"{i % 60} {hour} * * *"
        if expr not in nexts:
            nexts[expr] = first_fire_after(compile_trigger_for(expr), now)
        yield f"daily-{i}", {"command": "echo daily", "cron": expr}, nexts[expr]


def compile_trigger_for(expr: str) -> Any:
    spec = parse_job({"command": "true", "cron": expr}, job_id="template").spec
    assert spec.trigger is not None
    return compile_trigger(spec.trigger, job_id="template")


def startup_clocktower(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """`serve` as a user runs it, and the engine and loop alone (what `serve`
    does before its loop starts is measured by the difference)."""
    results = {}
    with workspace("startup") as ws:
        began = time.time()
        seed(ws.url, daily_rows(args.startup_jobs))
        seeded = time.time() - began
        for role, name in (("clocktower", "clocktower"), ("clocktower-loop", "ct-engine+loop")):
            node = start_node(ws, args, role)
            try:
                ready = node.read_event("ready", args.startup_timeout)
            except RuntimeError:
                results[name] = {"startup_s": float("nan"), "seed_s": seeded}
                continue
            finally:
                node.stop()
            results[name] = {
                "startup_s": ready["at"] - node.spawned_at,
                "rss_mib": ready["rss_mib"],
                "peak_rss_mib": ready["peak_rss_mib"],
                "seed_s": seeded,
            }
    return results


def startup_apscheduler(args: argparse.Namespace, store: str) -> dict[str, Any]:
    with workspace("startup-aps") as ws:
        params = {
            "scenario": "startup",
            "store": store,
            "path": str(ws.dir / "aps.db"),
            "jobs": args.startup_jobs,
            "target": args.target,
        }
        seeded = 0.0
        if store == "sqlite":
            began = time.time()
            run_child("apscheduler", {**params, "scenario": "seed"}, ws.dir, timeout=1200)
            seeded = time.time() - began
        child = spawn_child("apscheduler", params, ws.dir)
        try:
            ready = child.read_event("ready", 1200)
        finally:
            child.stop()
    return {
        "startup_s": ready["at"] - child.spawned_at,
        "rss_mib": ready["rss_mib"],
        "peak_rss_mib": ready["peak_rss_mib"],
        "seed_s": seeded,
    }


# --------------------------------------------------------------------------- report


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or not theirs:
        return "-"
    value = ours / theirs
    return "nan" if value != value else f"{value:.2f}x"


def table(title: str, results: dict[str, dict[str, Any]], rows: list[tuple[str, str]]) -> None:
    peers = list(results)
    others = [p for p in peers if not p.startswith(("clocktower", "ct-"))]
    print(f"\n{title}")
    head = f"{'':<24}" + "".join(f"{p:>16}" for p in peers)
    head += "".join(f"{'ct/' + p:>19}" for p in others)
    print(head)
    for label, key in rows:
        cells = [results[p].get(key) for p in peers]
        line = f"{label:<24}" + "".join(f"{fmt(c):>16}" for c in cells)
        ours = results.get("clocktower", {}).get(key)
        line += "".join(f"{ratio(ours, results[p].get(key)):>19}" for p in others)
        print(line)


def verdict(label: str, ok: bool, detail: str) -> str:
    return f"  {'MET ' if ok else 'MISSED'}  {label}: {detail}"


def run_burst(args: argparse.Namespace, out: dict[str, Any]) -> list[str]:
    results = {"clocktower": burst_clocktower(args)}
    for peer in args.peers:
        results[peer] = burst_apscheduler(args, peer.removeprefix("aps-"))
    out["burst"] = results
    table(
        f"(a) {args.burst_jobs:,} no-op Python jobs ({args.target}) due at the same instant, "
        f"{args.slots} slots",
        results,
        [
            ("lateness p50 (ms)", "lateness_p50_ms"),
            ("lateness p99 (ms)", "lateness_p99_ms"),
            ("lateness max (ms)", "lateness_max_ms"),
            ("all recorded (s)", "recorded_s"),
            ("runs", "executed"),
            ("missed", "missed"),
            ("runs persisted", "persisted"),
        ],
    )
    ct = results["clocktower"]
    persisted = ct["persisted"] == ct["distinct_jobs"] == args.burst_jobs == ct["runs"]
    late_ok = ct["lateness_max_ms"] < 1000 and ct["early"] == 0
    return [
        verdict(
            "(a) every run persisted, max lateness under 1 s",
            persisted and late_ok,
            f"{ct['persisted']:,}/{args.burst_jobs:,} persisted, "
            f"max {ct['lateness_max_ms']:.0f} ms, {ct['early']} early",
        )
    ]


def run_every(args: argparse.Namespace, out: dict[str, Any]) -> list[str]:
    results = {"clocktower": every_clocktower(args)}
    for peer in args.peers:
        results[peer] = every_apscheduler(args, peer.removeprefix("aps-"))
    out["every"] = results
    table(
        f"(b) {args.every_jobs:,} jobs every second for {args.every_seconds} s",
        results,
        [
            ("fire times", "expected"),
            ("run", "executed"),
            ("missed", "missed"),
            ("lateness p50 (ms)", "lateness_p50_ms"),
            ("lateness p99 (ms)", "lateness_p99_ms"),
            ("lateness max (ms)", "lateness_max_ms"),
        ],
    )
    ct = results["clocktower"]
    return [verdict("(b) zero missed", ct["missed"] == 0, f"{ct['missed']} missed")]


def run_commands(args: argparse.Namespace, out: dict[str, Any]) -> list[str]:
    load = {
        "clocktower": commands_clocktower(args, args.command_jobs),
        "bare-spawn": commands_bare(args, "load"),
    }
    table(
        f"(c) {args.command_jobs} command jobs (`true`) every second for "
        f"{args.command_seconds} s, {args.slots} processes at a time",
        load,
        [("runs recorded / s", "per_second"), ("runs recorded", "recorded")],
    )
    capacity = {
        "clocktower": commands_clocktower(args, args.command_capacity_jobs),
        "bare-spawn": commands_bare(args, "capacity"),
    }
    table(
        f"(c') capacity: {args.command_capacity_jobs:,} command jobs every second against "
        f"the bare loop spawning back to back, {args.slots} at a time",
        capacity,
        [("runs recorded / s", "per_second")],
    )
    out["commands"] = {"load": load, "capacity": capacity}
    lines = []
    for label, results in (("at the issue's load", load), ("at capacity", capacity)):
        ct, bare = results["clocktower"]["per_second"], results["bare-spawn"]["per_second"]
        lines.append(
            verdict(
                f"(c) at least half the bare spawn rate, {label}",
                ct >= bare / 2,
                f"{ct:.1f}/s against {bare:.1f}/s ({ct / bare:.2f}x)",
            )
        )
    return lines


def run_startup(args: argparse.Namespace, out: dict[str, Any]) -> list[str]:
    results = startup_clocktower(args)
    for peer in args.peers:
        if peer == "aps-memory" and not args.startup_aps_memory:
            continue
        results[peer] = startup_apscheduler(args, peer.removeprefix("aps-"))
    out["startup"] = results
    table(
        f"(d) start-up with {args.startup_jobs:,} jobs in the store",
        results,
        [
            ("start-up (s)", "startup_s"),
            ("RSS at first tick (MiB)", "rss_mib"),
            ("peak RSS (MiB)", "peak_rss_mib"),
        ],
    )
    return [startup_verdict(name, results[name]) for name in ("clocktower", "ct-engine+loop")]


def startup_verdict(name: str, ct: dict[str, Any]) -> str:
    if "rss_mib" not in ct:
        return verdict(f"(d) {name}: start under 2 s", False, "no first tick before the timeout")
    return verdict(
        f"(d) {name}: start under 2 s, RSS under 200 MB",
        ct["startup_s"] < 2 and ct["peak_rss_mib"] * 2**20 < 200e6,
        f"{ct['startup_s']:.2f} s, peak RSS {ct['peak_rss_mib'] * 2**20 / 1e6:.0f} MB",
    )


SCENARIOS = {"a": run_burst, "b": run_every, "c": run_commands, "d": run_startup}
PEERS = ("aps-memory", "aps-sqlite")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default="abcd", help="scenarios to run (default abcd)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a first look")
    p.add_argument(
        "--peers", default=",".join(PEERS), help="APScheduler stores to run, comma-separated"
    )
    p.add_argument("--target", default="noop", choices=["noop", "anoop"], help="sync or async")
    p.add_argument("--slots", type=int, default=SLOTS, help="max_concurrent_runs (4 x CPUs)")
    p.add_argument("--burst-jobs", type=int, default=10_000)
    p.add_argument("--every-jobs", type=int, default=1_000)
    p.add_argument("--every-seconds", type=int, default=30)
    p.add_argument("--command-jobs", type=int, default=100)
    p.add_argument("--command-seconds", type=int, default=20)
    p.add_argument("--command-capacity-jobs", type=int, default=1_000, help="more than it runs")
    p.add_argument("--startup-jobs", type=int, default=1_000_000)
    p.add_argument(
        "--startup-aps-memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time APScheduler adding the start-up jobs to a MemoryJobStore",
    )
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait (d)")
    p.add_argument("--lead", type=float, default=5.0, help="seconds from seeding to first fire")
    p.add_argument(
        "--aps-misfire-grace",
        type=float,
        default=None,
        help="APScheduler's misfire_grace_time (default: none, every fire time runs)",
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for runs")
    p.add_argument("--node-log-level", default="INFO", help="the Clocktower node's log level")
    p.add_argument("--json", type=Path, default=HERE / "firing-result.json")
    args = p.parse_args(argv)
    if args.quick:
        args.burst_jobs, args.every_jobs, args.every_seconds = 2_000, 200, 10
        args.command_seconds, args.startup_jobs = 5, 100_000
    args.peers = [x for x in args.peers.split(",") if x]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        p.error(f"--peers: unknown {', '.join(unknown)} (choose from {', '.join(PEERS)})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.time()
    out: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "cpus": os.cpu_count()}
    out["settings"] = {k: str(v) for k, v in vars(args).items()}
    verdicts: list[str] = []
    for key in args.only:
        verdicts += SCENARIOS[key](args, out)
    print("\nTargets (issue 3):")
    print("\n".join(verdicts))
    print(
        f"\n(total {time.time() - began:.0f} s; Python {sys.version.split()[0]}, {SLOTS // 4} CPUs)"
    )
    args.json.write_text(json.dumps(out, indent=2, default=str))
    print(f"numbers written to {args.json}")
    return 0 if all("MET" in v for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
