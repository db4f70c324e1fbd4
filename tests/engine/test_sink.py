"""The output sink: a program printing faster than the store writes keeps its
run's memory within a few times the output cap, and what is stored is what
the store would have kept of everything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from clocktower.engine.sink import TRIM_AT, StoreSink
from clocktower.model import JobSpec, PythonTarget, TriggerKind
from clocktower.store import NewRun, Store
from clocktower.store.output import Output, line_bytes

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def runs(store: Store) -> Iterator[tuple[int, int]]:
    """Two runs: one written through the sink, one with every line as printed."""
    store.put_job(JobSpec(id="chatty", target=PythonTarget("x:y")), now=T0, next_fire_at=None)
    created = store.create_runs(
        [NewRun(job_id="chatty", scheduled_for=T0, trigger=TriggerKind.MANUAL)] * 2, now=T0
    )
    yield created[0].id, created[1].id


def printed(count: int, start: int = 0) -> Iterator[str]:
    """Lines of varied length, some with characters of two and three bytes."""
    for i in range(start, start + count):
        yield f"{i:06d} " + ("é" if i % 3 else "€") * (i % 37) + "x" * (i % 11)


def stored(store: Store, run_id: int) -> dict[str, Any]:
    chunks, dropped = store.read_output(run_id)
    run = store.get_run(run_id)
    return {
        "head": [text for c in chunks if c.part == "head" for _, _, text in c.lines],
        "tail": [text for c in chunks if c.part == "tail" for _, _, text in c.lines],
        "dropped": dropped,
        "bytes": run.output_bytes,
    }


def flushes(sink: StoreSink, batches: list[list[str]], store: Store, cap: int) -> list[Output]:
    """Write each batch of lines without the loop running in between (as a
    fast printer does), taking what waits after each; return what was taken.
    Meanwhile the sink never holds more than `TRIM_AT` times the cap."""
    taken = []
    for batch in batches:
        for index, line in enumerate(batch):
            sink.write("stdout", line)
            if index % 500 == 0:
                waiting = sum(len(text.encode()) + 1 for _, _, text in sink._lines)
                assert waiting <= 4 * TRIM_AT * cap + 4 * 100  # 4 bytes a character at most
        output = sink.take()
        if output is not None:
            taken.append(output)
            store.write(node="n", now=T0, outputs=[output])
    return taken


@pytest.mark.parametrize("cap", [4_000, 9_999, 50_000])
@pytest.mark.parametrize("shape", ["one flush", "small first", "many flushes"])
async def test_what_a_fast_printer_leaves_is_what_the_store_keeps(
    store: Store, runs: tuple[int, int], cap: int, shape: str
) -> None:
    through_sink, reference = runs
    sink = StoreSink(through_sink, cap=cap, send=lambda _: asyncio.sleep(0))
    lines = list(printed(20_000))
    batches = {
        "one flush": [lines],
        "small first": [lines[:3], lines[3:]],
        "many flushes": [lines[i : i + 5_000] for i in range(0, len(lines), 5_000)],
    }[shape]
    taken = flushes(sink, batches, store, cap)
    assert any(output.cut for output in taken), "the sink never had to cut"
    for batch in batches:  # the same batches, every line given to the store
        store.append_output(reference, [(0.0, "stdout", text) for text in batch], cap=cap)
    assert stored(store, through_sink) == stored(store, reference)
    kept = stored(store, through_sink)
    assert kept["head"][0] == lines[0] and kept["tail"][-1] == lines[-1]
    assert kept["bytes"] == line_bytes([(0.0, "", text) for text in lines])
    sink.close()


async def test_a_cut_is_counted_even_when_only_the_last_line_is_kept(
    store: Store, runs: tuple[int, int]
) -> None:
    """The store keeps at least the newest line, however long: so does the sink."""
    through_sink, reference = runs
    cap = 1_000
    sink = StoreSink(through_sink, cap=cap, send=lambda _: asyncio.sleep(0))
    lines = ["a" * 300] * 10 + ["b" * 900]
    flushes(sink, [lines], store, cap)
    store.append_output(reference, [(0.0, "stdout", text) for text in lines], cap=cap)
    assert stored(store, through_sink) == stored(store, reference)
    assert stored(store, through_sink)["tail"] == ["b" * 900]
    sink.close()
