"""The engine's writes, grouped: one transaction for all that is waiting.

Every run that starts or ends needs a write, and a transaction costs more than
a short run does. Runs ask the writer instead (`start`, `output`, `finish`)
and await the answer. While one transaction is being written, the requests
that arrive wait and go together into the next one (group commit): a quiet
node writes at once, a busy one writes a few large transactions instead of
many small ones; an outcome waits a millisecond for others while runs are
still executing. When runs ended and freed slots, the same transaction also
claims and starts runs that are already due, so a node working through a
backlog needs no loop tick per run.

Requests are written in the order they arrive, a run's output before its
outcome; the store writes outputs, then outcomes, then starts, so a run that
ended here never counts as running when the next run of its job is decided.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from clocktower.store import Store
from clocktower.store.output import Output
from clocktower.store.writes import Decide, Dependents, Finish, Started, Written

log = logging.getLogger("clocktower.engine")

# How long an outcome waits for others when runs are still executing, as
# PostgreSQL's commit_delay: with eight no-op runs in flight, transactions
# carry about eight outcomes instead of four (bench/firing.py (a): 2,516
# transactions become 1,280, and the burst ends 10-20% sooner). The wait
# ends as soon as no run is left executing (a further 12%).
GROUP_DELAY = 0.001


@dataclass(slots=True)
class Ending:
    """A run that ended: its outcome, and the folder whose files are kept with it."""

    finish: Finish
    artifacts: Path | None


@dataclass(slots=True)
class Batch:
    outputs: list[tuple[Output, asyncio.Future[None]]] = field(default_factory=list)
    endings: list[tuple[Ending, asyncio.Future[bool]]] = field(default_factory=list)
    starts: list[tuple[int, asyncio.Future[Started | None]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.outputs) + len(self.endings) + len(self.starts)

    def parts(self) -> list[Batch]:
        """One batch per request, in the order they are written."""
        return (
            [Batch(outputs=[o]) for o in self.outputs]
            + [Batch(endings=[e]) for e in self.endings]
            + [Batch(starts=[s]) for s in self.starts]
        )

    def futures(self) -> list[asyncio.Future[Any]]:
        return (
            [f for _, f in self.outputs]
            + [f for _, f in self.endings]
            + [f for _, f in self.starts]
        )


@dataclass(frozen=True, slots=True)
class Work:
    """What the engine does in the writer's thread around the transaction."""

    node: str
    clock: Callable[[], datetime]
    lease_until: Callable[[], datetime]
    decide: Decide
    dependents: Dependents  # runs of the jobs waiting for one that succeeded
    prepare: Callable[[list[Ending]], None]  # before the transaction: artifacts (blocking)
    tidy: Callable[[], None]  # after it, off the critical path: cleaning up (blocking)


class Writer:
    def __init__(self, store: Store, work: Work) -> None:
        self.store = store
        self.work = work
        # Slots to fill from the runs already due; the engine holds them until
        # `on_claimed` says how many were used.
        self.reserve: Callable[[], int] = lambda: 0
        self.ahead: Callable[[], int] = lambda: 0  # more runs to start than reserved slots
        self.on_claimed: Callable[[list[Started], int], None] = lambda started, reserved: None
        self.on_idle: Callable[[], None] = lambda: None  # nothing more due: the loop takes over
        self.executing: Callable[[], int] = lambda: 0  # runs whose outcome is still to come
        self.refill = False  # runs may be due for slots that freed up
        self._batch = Batch()
        self._task: asyncio.Task[None] | None = None
        self._tidying: asyncio.Task[None] | None = None
        self._gathering: asyncio.Future[None] | None = None  # set while waiting for endings

    # ------------------------------------------------------------------ requests

    def start(self, run_id: int) -> asyncio.Future[Started | None]:
        """Start a run this node claimed (its instant has come); None if it is
        no longer this node's."""
        future: asyncio.Future[Started | None] = asyncio.get_running_loop().create_future()
        self._batch.starts.append((run_id, future))
        self.kick()
        return future

    def output(self, output: Output) -> asyncio.Future[None]:
        """Store lines a run printed, and its progress."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.outputs.append((output, future))
        self.kick()
        return future

    def finish(self, ending: Ending) -> asyncio.Future[bool]:
        """Record how a run ended; resolves once it is committed (False if the
        run is no longer this node's). The run must no longer count in
        `executing`."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._batch.endings.append((ending, future))
        if self._gathering is not None and self.executing() == 0:
            _settle(self._gathering)  # nothing else is running: no one to wait for
        self.kick()
        return future

    def withdraw(self, run_id: int) -> bool:
        """Take back a start request that is not being written yet."""
        for index, (waiting, future) in enumerate(self._batch.starts):
            if waiting == run_id:
                del self._batch.starts[index]
                future.cancel()
                return True
        return False

    def kick(self) -> None:
        """Make sure the writer runs if there is anything to write."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="writer")

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def idle(self) -> None:
        """Wait until everything asked so far is written."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    # ------------------------------------------------------------------ the loop

    async def _drain(self) -> None:
        """Write batches until nothing is waiting; then end (a later request
        starts a new writer task)."""
        while True:
            if self._batch.endings and self.executing() > 0:
                # Other runs may end in a moment: one transaction for all of them
                # (and for the slots they free) costs less than one each. The
                # wait ends early when the last of them has ended.
                await self._gather_endings()
            batch, self._batch = self._batch, Batch()
            slots = self.reserve() if self.refill else 0
            claim = slots + (self.ahead() if self.refill else 0)
            if not batch and claim <= 0:
                self.on_claimed([], slots)
                self.refill = False
                return
            try:
                written = await asyncio.to_thread(self._write, batch, claim)
            except Exception as exc:
                self.refill = False
                self.on_claimed([], slots)
                await self._one_by_one(batch, exc)
                continue
            _deliver(batch, written)
            if batch.endings and (self._tidying is None or self._tidying.done()):
                self._tidying = asyncio.create_task(asyncio.to_thread(self.work.tidy))
            if claim > 0:
                self.refill = written.more
                self.on_claimed(written.claimed, slots)
                if not written.more:
                    self.on_idle()

    async def _gather_endings(self) -> None:
        loop = asyncio.get_running_loop()
        gathered: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(GROUP_DELAY, _settle, gathered)
        self._gathering = gathered
        try:
            await gathered
        finally:
            timer.cancel()
            self._gathering = None

    def _write(self, batch: Batch, claim: int) -> Written:
        """In a worker thread: prepare the endings, then one transaction."""
        work = self.work
        endings = [ending for ending, _ in batch.endings]
        if endings:
            work.prepare(endings)
        return self.store.write(
            node=work.node,
            now=work.clock(),
            outputs=[output for output, _ in batch.outputs],
            finishes=[ending.finish for ending in endings],
            starts=[run_id for run_id, _ in batch.starts],
            claim=claim,
            lease_until=work.lease_until(),
            decide=work.decide,
            dependents=work.dependents,
        )

    async def _one_by_one(self, batch: Batch, exc: Exception) -> None:
        """A batch failed: write its requests one per transaction, so that one
        bad request fails alone; each waiting run gets its own answer or error."""
        parts = batch.parts()
        if len(parts) <= 1:
            log.error("writing a run's output, outcome or start failed: %s", exc)
            _fail(batch, exc)
            return
        log.error("writing a batch of %d failed (%s); writing them one by one", len(parts), exc)
        for part in parts:
            try:
                written = await asyncio.to_thread(self._write, part, 0)
            except Exception as error:  # handed to the waiting run, which decides
                log.error("writing a run's output, outcome or start failed: %s", error)
                _fail(part, error)
            else:
                _deliver(part, written)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _deliver(batch: Batch, written: Written) -> None:
    for _, stored in batch.outputs:
        if not stored.done():
            stored.set_result(None)
    for ending, done in batch.endings:
        if not done.done():
            done.set_result(written.finished.get(ending.finish.run_id, False))
    for run_id, start in batch.starts:
        if not start.done():
            start.set_result(written.started.get(run_id))


def _fail(batch: Batch, exc: Exception) -> None:
    for future in batch.futures():
        if not future.done():
            future.set_exception(exc)
