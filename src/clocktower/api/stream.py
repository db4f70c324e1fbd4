"""Run output as it comes, and artifacts as downloads: shared by the API
(bearer tokens) and the dashboard (session cookie).

The live stream is Server-Sent Events: `output` events carry one stored chunk
of lines (the event id is the chunk id, so a reconnecting EventSource resumes
after the last one it saw), `state` events carry the run whenever its state or
progress changes, and a final `end` event closes the stream once the run has
ended and all its output was sent. The store is the source of truth, so a
stream works whichever node runs the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import Response
from fastapi.responses import StreamingResponse

from clocktower.api.context import AppContext
from clocktower.api.errors import ApiError
from clocktower.api.schemas import OutputChunkOut, OutputLine, iso, run_out
from clocktower.model import Run
from clocktower.store import OutputChunk

KEEPALIVE_EVERY = 15.0  # seconds between comments that keep proxies from closing the stream


def chunk_out(chunk: OutputChunk) -> OutputChunkOut:
    return OutputChunkOut(
        id=chunk.id,
        part=chunk.part,
        lines=[
            OutputLine(at=iso(datetime.fromtimestamp(t, UTC)) or "", stream=s, text=x)
            for t, s, x in chunk.lines
        ],
    )


def output_text(chunks: list[OutputChunk], dropped: int) -> str:
    """Plain text, with a marker where the middle of a long output was cut."""
    out: list[str] = []
    marked = False
    for chunk in chunks:
        if chunk.part == "tail" and dropped and not marked:
            out.append(f"[… {dropped} bytes of output dropped …]")
            marked = True
        out.extend(text for _, _, text in chunk.lines)
    return "\n".join(out) + ("\n" if out else "")


def sse(event: str, data: str, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"{head}event: {event}\n{body}\n".encode()


def _state_key(run: Run) -> tuple[object, ...]:
    return (run.state, run.progress_done, run.progress_total, run.started_at, run.error)


async def output_events(ctx: AppContext, run_id: int, after: int) -> AsyncIterator[bytes]:
    """The events of one run's live output, until it ends or the server stops."""
    store = ctx.store
    last: tuple[object, ...] | None = None
    quiet = 0.0
    shown_dropped = 0
    yield b"retry: 2000\n\n"
    while True:
        run = await asyncio.to_thread(store.get_run, run_id)
        chunks, dropped = await asyncio.to_thread(store.read_output, run_id, after=after)
        for chunk in chunks:
            if chunk.part == "tail" and dropped > shown_dropped:  # cut before this chunk
                yield sse("cut", json.dumps({"dropped_bytes": dropped - shown_dropped}))
                shown_dropped = dropped
            yield sse("output", chunk_out(chunk).model_dump_json(), chunk.id)
            after = chunk.id
        if _state_key(run) != last:
            last = _state_key(run)
            yield sse("state", run_out(run).model_dump_json())
        if run.state.final:
            yield sse("end", json.dumps({"state": str(run.state), "after": after}))
            return
        quiet = 0.0 if chunks else quiet + ctx.stream_interval
        if quiet >= KEEPALIVE_EVERY:
            quiet = 0.0
            yield b": keep-alive\n\n"
        if await _stopping(ctx, ctx.stream_interval):
            return


async def _stopping(ctx: AppContext, wait: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.stopping.wait(), wait)
    return ctx.stopping.is_set()


def stream_response(ctx: AppContext, run_id: int, after: int) -> StreamingResponse:
    ctx.store.get_run(run_id)  # 404 before the stream starts
    return StreamingResponse(
        output_events(ctx, run_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def artifact_response(ctx: AppContext, run_id: int, name: str) -> Response:
    """An artifact as a download. Always an attachment, never rendered in the
    dashboard's origin (an HTML report must not run scripts there)."""
    ctx.store.get_run(run_id)
    content = ctx.store.get_artifact(run_id, name)
    if content is None:
        raise ApiError("artifact_not_found", f"run {run_id} has no artifact {name!r}", field="name")
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    filename = name.rsplit("/", 1)[-1]
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )
