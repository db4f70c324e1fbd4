"""Run output and artifacts.

Output arrives in batches of lines and is stored in chunks. Each run keeps at
most `cap` bytes: the first half as it came (the head: how it started) and the
last half as a rolling window (the tail: how it ended). Tail chunks that fall
out of the window are deleted and counted in `runs.output_dropped`, so readers
can mark the cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, select, update

from clocktower.store.db import Database
from clocktower.store.rows import OutputChunk
from clocktower.store.schema import artifacts, run_output, runs

Line = tuple[float, str, str]  # (epoch seconds, stream, text)


def line_bytes(lines: Sequence[Line]) -> int:
    return sum(line_size(line) for line in lines)


def line_size(line: Line) -> int:
    return len(line[2].encode()) + 1  # with its newline


def head_and_tail(lines: Sequence[Line], head_room: int, keep: int) -> tuple[int, int]:
    """Where the cap cuts `lines`, printed after the run's head had `head_room`
    bytes left: `lines[:head]` still fit in the head; the tail keeps
    `lines[tail:]`, the newest that fit in `keep` bytes (at least the last
    line); the lines between are cut. The store and the sink cut alike."""
    head = 0
    while head < len(lines) and head_room >= (size := line_size(lines[head])):
        head_room -= size
        head += 1
    tail, kept = len(lines), 0
    while tail > head and (tail == len(lines) or kept + line_size(lines[tail - 1]) <= keep):
        tail -= 1
        kept += line_size(lines[tail])
    return head, tail


@dataclass(slots=True)
class Output:
    """Lines a run printed and how far it got, to store (see `RunQueries.write`)."""

    run_id: int
    lines: Sequence[Line]
    cap: int  # the run's output cap, in bytes
    progress: tuple[float, float | None] | None = None  # (done, total)
    # (at, bytes): that many bytes printed before `lines[at]` were already cut
    # by the sender, which knew the cap would drop them (see `StoreSink`).
    cut: tuple[int, int] | None = None


class OutputQueries:
    db: Database

    def append_output(
        self, run_id: int, lines: Sequence[Line], *, cap: int, cut: tuple[int, int] | None = None
    ) -> None:
        if not lines:
            return
        with self.db.write() as conn:
            self._append_output(conn, run_id, lines, cap, cut)

    def _append_output(
        self,
        conn: Connection,
        run_id: int,
        lines: Sequence[Line],
        cap: int,
        cut: tuple[int, int] | None,
    ) -> None:
        """Store `lines`: what still fits in the head goes there, the rest
        joins the tail, which keeps its newest `cap - cap // 2` bytes. A batch
        is split line by line, so a large one cannot carry the run past its cap.
        `cut`: bytes dropped before `lines[at]`, counted as printed and cut."""
        if cut is not None:
            at, dropped = cut
            if at:
                self._append_output(conn, run_id, lines[:at], cap, None)
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    output_bytes=runs.c.output_bytes + dropped,
                    output_dropped=runs.c.output_dropped + dropped,
                )
            )
            lines = lines[at:]
            if not lines:
                return
        nbytes = line_bytes(lines)
        total = conn.execute(select(runs.c.output_bytes).where(runs.c.id == run_id)).scalar_one()
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(output_bytes=runs.c.output_bytes + nbytes)
        )
        keep = cap - cap // 2
        head, tail = head_and_tail(lines, cap // 2 - total, keep)
        if head:
            self._insert_chunk(conn, run_id, "head", lines[:head])
        if tail == len(lines):
            return
        self._insert_chunk(conn, run_id, "tail", lines[tail:])
        self._trim_tail(conn, run_id, keep, dropped=line_bytes(lines[head:tail]))

    def _insert_chunk(
        self, conn: Connection, run_id: int, part: str, lines: Sequence[Line]
    ) -> None:
        conn.execute(
            run_output.insert().values(
                run_id=run_id, part=part, nbytes=line_bytes(lines), lines=[list(x) for x in lines]
            )
        )

    def _trim_tail(self, conn: Connection, run_id: int, keep: int, *, dropped: int = 0) -> None:
        """Drop the oldest tail chunks until the tail fits in `keep` bytes
        (always keeping the newest chunk); count them, and `dropped` bytes
        that never became a chunk, as cut."""
        chunks = conn.execute(
            select(run_output.c.id, run_output.c.nbytes)
            .where(run_output.c.run_id == run_id, run_output.c.part == "tail")
            .order_by(run_output.c.id.desc())
        ).all()
        kept, drop_ids = 0, []
        for index, (chunk_id, nbytes) in enumerate(chunks):
            if index == 0 or kept + nbytes <= keep:
                kept += nbytes
            else:
                drop_ids.append(chunk_id)
                dropped += nbytes
        if drop_ids:
            conn.execute(delete(run_output).where(run_output.c.id.in_(drop_ids)))
        if dropped:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(output_dropped=runs.c.output_dropped + dropped)
            )

    def read_output(self, run_id: int, *, after: int = 0) -> tuple[list[OutputChunk], int]:
        """Chunks with id > `after`, oldest first, and the bytes dropped so far."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(run_output)
                .where(run_output.c.run_id == run_id, run_output.c.id > after)
                .order_by(run_output.c.id)
            ).mappings()
            chunks = [
                OutputChunk(r["id"], r["part"], [(t, s, x) for t, s, x in r["lines"]]) for r in rows
            ]
            dropped = conn.execute(
                select(runs.c.output_dropped).where(runs.c.id == run_id)
            ).scalar_one_or_none()
            return chunks, int(dropped or 0)

    # ------------------------------------------------------------------ artifacts

    def add_artifact(self, run_id: int, name: str, content: bytes, *, now: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.name == name)
            )
            conn.execute(
                artifacts.insert().values(
                    run_id=run_id, name=name, size=len(content), content=content, created_at=now
                )
            )

    def list_artifacts(self, run_id: int) -> list[tuple[str, int]]:
        query = (
            select(artifacts.c.name, artifacts.c.size)
            .where(artifacts.c.run_id == run_id)
            .order_by(artifacts.c.name)
        )
        with self.db.read() as conn:
            return [(name, size) for name, size in conn.execute(query)]

    def get_artifact(self, run_id: int, name: str) -> bytes | None:
        query = select(artifacts.c.content).where(
            artifacts.c.run_id == run_id, artifacts.c.name == name
        )
        with self.db.read() as conn:
            value: bytes | None = conn.execute(query).scalar_one_or_none()
            return value

    def output_size(self, run_id: int) -> int:
        with self.db.read() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(run_output.c.nbytes), 0)).where(
                    run_output.c.run_id == run_id
                )
            ).scalar_one()
            return int(total)
