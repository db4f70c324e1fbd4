"""The store's share of a burst: the engine's batch writes alone, in one thread.

Run: .venv/bin/python bench/store_write.py                 (10,000 runs, 36 a batch)
     .venv/bin/python bench/store_write.py --runs 2000 --batch 72 --postgres postgresql+psycopg://...

Seeds N one-off jobs due now, lets the fire step create their runs, then
writes batches as the engine's writer does when short runs end back to back:
each transaction records the outcomes of the previous batch and claims and
starts the next one (`Store.write`). Prints the CPU time per run, which is
what a node running short jobs spends in the store for each, whatever else
it does; bench/firing.py (a) measures everything together.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clocktower.engine import Engine, EngineSettings
from clocktower.engine.policies import decide_start
from clocktower.model import RunState
from clocktower.store import Store
from clocktower.store.writes import Finish, RunResult, Started

sys.path.insert(0, str(Path(__file__).resolve().parent))
from firing import seed, workspace  # the bench's own helpers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=36, help="runs claimed per transaction")
    parser.add_argument(
        "--postgres", help="a PostgreSQL URL, written in a schema of its own (default: SQLite)"
    )
    args = parser.parse_args()
    with workspace("store-write") as ws, _schema(args.postgres) as postgres:
        url = postgres or ws.url
        due = datetime.now(UTC) - timedelta(seconds=1)
        job = {"call": "firing_targets:noop", "at": due.isoformat()}
        seed(url, ((f"job-{i}", job, due) for i in range(args.runs)))
        store = Store(url)
        engine = Engine(store, EngineSettings(node_id="bench", artifacts_dir=ws.dir))
        while engine.fire_due():
            pass
        took, cpu, batches = _write_all(store, args.batch)
        store.close()
    print(
        f"{args.runs:,} runs in {batches} transactions of up to {args.batch}: "
        f"{took:.2f} s, {cpu / args.runs * 1e6:.0f} us of CPU per run"
    )
    return 0


@contextmanager
def _schema(url: str | None) -> Iterator[str | None]:
    """`url` with a new schema of its own, dropped afterwards."""
    if url is None:
        yield None
        return
    import psycopg

    schema = f"ct_bench_{uuid.uuid4().hex[:12]}"
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _write_all(store: Store, batch: int) -> tuple[float, float, int]:
    """Claim-and-start `batch` runs a transaction, recording the previous
    batch's outcomes in it, until none is left; (seconds, CPU seconds, count)."""
    ended: list[Started] = []
    began, began_cpu, batches = time.perf_counter(), time.process_time(), 0
    while True:
        now = datetime.now(UTC)
        finishes = [
            Finish(s.run.id, RunResult(RunState.SUCCEEDED, result=1.5), now, (), s.run.job_id)
            for s in ended
        ]
        written = store.write(
            node="bench",
            now=now,
            finishes=finishes,
            claim=batch,
            lease_until=now + timedelta(seconds=30),
            decide=decide_start,
            dependents=lambda finish, waiting, succeeded: [],
        )
        batches += 1
        ended = [s for s in written.claimed if s.started]
        if not ended and not finishes:
            break
    return time.perf_counter() - began, time.process_time() - began_cpu, batches


if __name__ == "__main__":
    raise SystemExit(main())
