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
    return sum(len(text.encode()) + 1 for _, _, text in lines)


@dataclass(slots=True)
class Output:
    """Lines a run printed and how far it got, to store (see `RunQueries.write`)."""

    run_id: int
    lines: Sequence[Line]
    cap: int  # the run's output cap, in bytes
    progress: tuple[float, float | None] | None = None  # (done, total)


class OutputQueries:
    db: Database

    def append_output(self, run_id: int, lines: Sequence[Line], *, cap: int) -> None:
        if not lines:
            return
        with self.db.write() as conn:
            self._append_output(conn, run_id, lines, cap)

    def _append_output(
        self, conn: Connection, run_id: int, lines: Sequence[Line], cap: int
    ) -> None:
        nbytes = line_bytes(lines)
        total = conn.execute(select(runs.c.output_bytes).where(runs.c.id == run_id)).scalar_one()
        part = "head" if total < cap // 2 else "tail"
        conn.execute(
            run_output.insert().values(
                run_id=run_id, part=part, nbytes=nbytes, lines=[list(x) for x in lines]
            )
        )
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(output_bytes=runs.c.output_bytes + nbytes)
        )
        if part == "tail":
            self._trim_tail(conn, run_id, cap - cap // 2)

    def _trim_tail(self, conn: Connection, run_id: int, keep: int) -> None:
        """Drop the oldest tail chunks until the tail fits in `keep` bytes
        (always keeping the newest chunk)."""
        chunks = conn.execute(
            select(run_output.c.id, run_output.c.nbytes)
            .where(run_output.c.run_id == run_id, run_output.c.part == "tail")
            .order_by(run_output.c.id.desc())
        ).all()
        kept, drop_ids, dropped = 0, [], 0
        for index, (chunk_id, nbytes) in enumerate(chunks):
            if index == 0 or kept + nbytes <= keep:
                kept += nbytes
            else:
                drop_ids.append(chunk_id)
                dropped += nbytes
        if drop_ids:
            conn.execute(delete(run_output).where(run_output.c.id.in_(drop_ids)))
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
