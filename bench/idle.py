"""An idle node's CPU use: 10,000 jobs due in an hour, nothing to do until then.

    .venv/bin/python bench/idle.py [--jobs 10000] [--seconds 30]

Starts a real `clocktower serve --no-http` on a fresh SQLite store and reads the
process's CPU time from /proc before and after a quiet period.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clocktower.model import CommandTarget, JobSpec, TriggerSpec
from clocktower.spec import job_to_mapping
from clocktower.store import Store
from clocktower.store.schema import jobs

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def seed(url: str, count: int) -> None:
    store = Store(url)
    store.upgrade()
    now = datetime.now(UTC)
    at = now + timedelta(hours=1)
    rows = []
    for i in range(count):
        spec = JobSpec(
            id=f"job-{i:05d}",
            target=CommandTarget("true"),
            trigger=TriggerSpec("at", at.isoformat()),
        )
        rows.append(
            {
                "id": spec.id,
                "spec": job_to_mapping(spec),
                "kind": "command",
                "tags": "",
                "after": "",
                "source": "api",
                "next_fire_at": at,
                "created_at": now,
                "updated_at": now,
            }
        )
    with store.db.write() as conn:
        conn.execute(jobs.insert(), rows)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/idle.db"
        seed(url, args.jobs)
        binary = Path(sys.executable).with_name("clocktower")
        env = {**os.environ, "CLOCKTOWER_DATABASE": url, "CLOCKTOWER_LOG_LEVEL": "warning"}
        proc = subprocess.Popen([str(binary), "serve", "--no-http"], env=env, cwd=tmp)
        try:
            time.sleep(5)  # start-up and first tick
            before, start = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.seconds)
            used, elapsed = cpu_seconds(proc.pid) - before, time.monotonic() - start
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"{args.jobs} jobs due in an hour; idle node over {elapsed:.0f} s:")
    print(f"  CPU time {used:.2f} s = {100 * used / elapsed:.2f} % of one core")


if __name__ == "__main__":
    main()
