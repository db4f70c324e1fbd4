"""The REST API and the dashboard under load: 10,000 jobs and 1,000,000 runs on SQLite.

    .venv/bin/python bench/api.py [--jobs 10000] [--runs-per-job 100] [--clients 50]
                                  [--seconds 10] [--db PATH] [--driver wrk|httpx]
                                  [--writes N] [--no-compare]

Seeds a SQLite store (see api_seed.py), starts a node in a child process (the
scheduler loop and the HTTP server, as `clocktower serve` runs them) on
127.0.0.1, and drives it from this process with `wrk` when it is installed
(apt-get install wrk), else with an httpx client pool. Each endpoint gets
`--clients` concurrent connections for `--seconds` after a short warm-up.
Requests carry a read token (the dashboard: a logged-in session), as they
would in production. The target is a p99 under 50 ms for each endpoint.

Each endpoint is measured twice: with the response cache (the default; hot
reads answered from memory while the store is unchanged) and without it
(every request reads the store and renders), so both costs are on the table.
`--no-compare` skips the second. The runs endpoint rotates over 500 jobs.
Before each endpoint's load, every path it uses is requested once, one at a
time, then the load runs for 2 s as a warm-up before it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

TARGET_P99_MS = 50.0


@dataclass
class Result:
    name: str
    cache: str
    rps: float
    p50: float
    p90: float
    p99: float
    errors: int
    commits: int = 0  # commits to the store while it was measured (each one empties the cache)


# --------------------------------------------------------------------------- the server


def serve(db: str, cache: bool) -> None:
    """Child process: a node on a free port; prints READY <url>."""
    from clocktower.api import create_app, serve_http
    from clocktower.engine import Loop
    from clocktower.node import NodeOptions, settle_memory
    from clocktower.node import serve as serve_node
    from clocktower.service import Service

    def ready(url: str) -> None:
        settle_memory()  # as `clocktower serve` does once its app is built
        print(f"READY {url}", flush=True)

    async def http(service: Service, loop: Loop) -> None:
        app = create_app(service, loop, allow_anonymous=True, cache=cache)
        await serve_http(service, loop, host="127.0.0.1", port=0, on_ready=ready, app=app)

    options = NodeOptions(database=f"sqlite:///{db}", node_id="bench-node", own_process=True)
    asyncio.run(serve_node(options, extra=http))


def start_server(db: str, cache: bool) -> tuple[subprocess.Popen[str], str]:
    """The node in a child process; its log goes next to the database."""
    log = open(f"{db}.server.log", "a")  # noqa: SIM115 - the child writes it until it ends
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", db, "--cache", "on" if cache else "off"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log.close()
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("READY "):
            return child, line.split()[1]
    raise SystemExit(f"the server did not start (exit status {child.wait()})")


# --------------------------------------------------------------------------- credentials


def credentials(db: str, url: str) -> tuple[dict[str, str], dict[str, str]]:
    """A read token's header, and a logged-in browser's cookie header."""
    from clocktower.api.tokens import create_token
    from clocktower.store import Store

    store = Store(f"sqlite:///{db}")
    secret = create_token(store, f"bench-{os.getpid()}-{time.time_ns()}", "read").secret
    store.close()
    with httpx.Client(base_url=url) as client:
        page = client.get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if not found:
            raise SystemExit("cannot read the login form")
        client.post("/login", data={"token": secret, "csrf": found.group(1), "next": "/"})
        client.get("/")  # shows the login's message, which the browser then forgets
        cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        if not client.cookies.get("ct_session"):
            raise SystemExit("login failed")
    # All the cookies a browser holds after logging in (the session and the
    # CSRF seed), as it sends them with every page.
    return {"Authorization": f"Bearer {secret}"}, {"Cookie": cookies}


# --------------------------------------------------------------------------- drivers


WRK_PATHS = """
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def wrk_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    name: str, url: str, paths: list[str], headers: dict[str, str], clients: int, seconds: int
) -> tuple[float, float, float, float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_PATHS % ", ".join(f'"{p}"' for p in paths))
    args = ["wrk", "-t1", f"-c{clients}", "--timeout", "30s", "--latency", "-s", script.name]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    try:
        subprocess.run([*args, "-d2s", url], capture_output=True, check=True)  # warm-up
        out = subprocess.run([*args, f"-d{seconds}s", url], capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    failed = int(errors.group(1)) if errors else 0
    if socket:
        failed += sum(int(n) for n in re.findall(r"\d+", socket.group(1)))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    if not latency:  # nothing answered in time
        return rps, math.inf, math.inf, math.inf, failed
    return rps, wrk_ms(latency["50"]), wrk_ms(latency["90"]), wrk_ms(latency["99"]), failed


async def _httpx_load(
    url: str, paths: list[str], headers: dict[str, str], clients: int, seconds: float
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.get(random.choice(paths))
                latencies.append((time.perf_counter() - start) * 1000)
                errors += response.status_code >= 400

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return latencies, errors, time.perf_counter() - started


def run_httpx(
    name: str, url: str, paths: list[str], headers: dict[str, str], clients: int, seconds: int
) -> tuple[float, float, float, float, int]:
    asyncio.run(_httpx_load(url, paths, headers, clients, 2))  # warm-up
    latencies, errors, took = asyncio.run(_httpx_load(url, paths, headers, clients, seconds))
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / took, cuts[49], cuts[89], cuts[98], errors


# --------------------------------------------------------------------------- main


def table(results: list[Result], args: argparse.Namespace, driver: str) -> None:
    print(
        f"\n{args.jobs:,} jobs, {args.jobs * args.runs_per_job:,} runs, SQLite; "
        f"{args.clients} concurrent clients for {args.seconds}s each, driven by {driver} "
        f"from another process on loopback ({os.cpu_count()} CPUs shared); "
        f"{args.writes:g} runs ended per second by another process\n"
    )
    columns = ("req/s", "p50 ms", "p90 ms", "p99 ms")
    head = (
        f"{'endpoint':<44}{'cache':<7}"
        + "".join(f"{c:>9}" for c in columns)
        + f"{'errors':>8}{'commits':>9}  target"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        verdict = "ok" if r.p99 < TARGET_P99_MS and not r.errors else "MISSED"
        numbers = f"{r.rps:>9.0f}{r.p50:>9.1f}{r.p90:>9.1f}{r.p99:>9.1f}"
        print(f"{r.name:<44}{r.cache:<7}{numbers}{r.errors:>8}{r.commits:>9}  {verdict}")
    print(
        f"\ntarget: p99 < {TARGET_P99_MS:.0f} ms. cache on: hot reads answered from memory "
        "while the store is unchanged (the default); off: every request reads the store.\n"
        "commits: how often the store changed during the measurement (the seeded jobs fire "
        "through the day, as real ones do); each change makes every cached answer stale."
    )


def measure(db: str, cache: bool, driver: str, args: argparse.Namespace) -> list[Result]:
    """The three endpoints against one server."""
    server, url = start_server(db, cache)
    label = "on" if cache else "off"
    try:
        token, session = credentials(db, url)
        run = run_wrk if driver == "wrk" else run_httpx
        ids = [f"job-{i:05d}" for i in range(0, args.jobs, max(1, args.jobs // 500))]
        cases = [
            ("GET /api/v1/jobs?limit=50", ["/api/v1/jobs?limit=50"], token),
            ("GET /api/v1/runs?job=<500 jobs>&limit=50", runs_paths(ids), token),
            ("GET / (dashboard jobs page)", ["/"], session),
        ]
        results = []
        for name, paths, headers in cases:
            visit_each(url, paths, headers)
            with CommitCounter(db) as commits, Writes(db, args.writes, args.jobs):
                numbers = run(name, url, paths, headers, args.clients, args.seconds)
            results.append(Result(name, label, *numbers, commits=commits.count))
        return results
    finally:
        server.terminate()
        server.wait(60)


def visit_each(url: str, paths: list[str], headers: dict[str, str]) -> None:
    """Ask for every path once, one at a time, before the load: the measurement
    is of a server that has seen its pages, not of its first minute."""
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for path in paths:
            client.get(path).raise_for_status()


class CommitCounter:
    """Counts commits to a SQLite file by any process (`PRAGMA data_version`,
    read every 10 ms in a thread) while a measurement runs."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> CommitCounter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            while not self._stop.wait(0.01):
                now = conn.execute("PRAGMA data_version").fetchone()[0]
                self.count += now != seen
                seen = now


class Writes:
    """Another process's work while a measurement runs (`--writes` per second):
    each write ends a run of a random job, as a busy node's runs do, so every
    write makes the answers that show all jobs stale, and one job's runs."""

    def __init__(self, db: str, per_second: float, jobs: int) -> None:
        self.db = db
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def __enter__(self) -> Writes:
        if self.interval:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self.interval:
            self._thread.join()

    def _write(self) -> None:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
            while not self._stop.wait(self.interval):
                job_id = f"job-{random.randrange(self.jobs):05d}"
                with conn:
                    conn.execute(
                        "UPDATE runs SET finished_at = ? WHERE id = "
                        "(SELECT max(id) FROM runs WHERE job_id = ?)",
                        (time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()), job_id),
                    )


def runs_paths(ids: list[str]) -> list[str]:
    return [f"/api/v1/runs?job={job_id}&limit=50" for job_id in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs-per-job", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--db", help="reuse or create this SQLite file (default: a temp dir)")
    parser.add_argument(
        "--writes",
        type=float,
        default=0.0,
        help="runs another process ends per second while measuring (default 0: a quiet store)",
    )
    parser.add_argument("--driver", choices=("wrk", "httpx"))
    parser.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="measure with the response cache only (default: also without it)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="on", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.cache == "on")
        return
    driver = args.driver or ("wrk" if shutil.which("wrk") else "httpx")
    workdir = tempfile.mkdtemp(prefix="clocktower-bench-")
    db = args.db or str(Path(workdir) / "bench.db")
    if not Path(db).exists():
        from api_seed import seed

        started = time.perf_counter()
        seed(db, args.jobs, args.runs_per_job)
        print(f"seeded {db} in {time.perf_counter() - started:.1f}s")
    results = []
    for cache in (True, False) if args.compare else (True,):
        results += measure(db, cache, driver, args)
    if not args.db:
        shutil.rmtree(workdir, ignore_errors=True)
    table(results, args, driver)


if __name__ == "__main__":
    main()
