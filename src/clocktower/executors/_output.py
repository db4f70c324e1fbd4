"""Turning a child's output bytes into lines for an `OutputSink`.

Lines are capped (`MAX_LINE` bytes): a longer line is split, so a program that
prints megabytes without a newline cannot make the server buffer them all.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from clocktower.executors.base import OutputSink, Stream

MAX_LINE = 64 * 1024

_PROGRESS = re.compile(
    r"::progress\s+(?P<done>\d+(?:\.\d+)?)\s*(?:(?P<pct>%)|/\s*(?P<total>\d+(?:\.\d+)?))?\s*"
)

LinesHandler = Callable[[list[str]], None]


def parse_progress(line: str) -> tuple[float, float | None] | None:
    """(done, total) from a progress line, or None if `line` is not one.

    `::progress 40/100` → (40, 100); `::progress 40%` → (40, 100); `::progress 40` → (40, None).
    """
    match = _PROGRESS.fullmatch(line)
    if match is None:
        return None
    total = match["total"]
    if match["pct"]:
        return float(match["done"]), 100.0
    return float(match["done"]), float(total) if total is not None else None


def _decode(raw: bytes | bytearray) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text


def _utf8_cut(buf: bytearray, start: int, pos: int) -> int:
    """`pos`, moved back (at most 3 bytes) so it does not split a UTF-8 character."""
    for back in range(4):
        cut = pos - back
        if cut <= start:
            break
        if buf[cut] & 0xC0 != 0x80:
            return cut
    return pos


class LineSplitter:
    """Bytes in, complete decoded lines out (without their newline)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        buf, start, lines = self._buf, 0, []
        while True:
            newline = buf.find(b"\n", start, start + self._max + 1)
            if newline != -1:
                end, resume = newline, newline + 1
            elif len(buf) - start > self._max:
                end = resume = _utf8_cut(buf, start, start + self._max)
            else:
                break
            lines.append(_decode(buf[start:end]))
            start = resume
        del buf[:start]
        return lines

    def flush(self) -> list[str]:
        """The unterminated last line, if any."""
        rest, self._buf = self._buf, bytearray()
        return [_decode(rest)] if rest else []


class LineReader(asyncio.Protocol):
    """Reads one pipe, handing each batch of complete lines to `handler`.

    `done` resolves when the pipe reaches end of file (every writer closed it).
    After `detach()` nothing more is handed on: the run's outcome has been
    decided and its sink may be gone.
    """

    def __init__(self, handler: LinesHandler, max_line: int = MAX_LINE) -> None:
        self._handler: LinesHandler | None = handler
        self._splitter = LineSplitter(max_line)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._emit(self._splitter.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self._emit(self._splitter.flush())
        if not self.done.done():
            self.done.set_result(None)

    def detach(self) -> None:
        """Hand on the unterminated last line, then stop handing on anything."""
        self._emit(self._splitter.flush())
        self._handler = None

    def _emit(self, lines: list[str]) -> None:
        if lines and self._handler is not None:
            self._handler(lines)


def stream_writer(sink: OutputSink, stream: Stream, *, progress: bool = False) -> LinesHandler:
    """A handler writing lines to `sink` as `stream`; with `progress`, `::progress` lines
    update the run's progress instead of being written."""

    def write(lines: list[str]) -> None:
        if lines:
            sink.write(stream, "\n".join(lines))

    def handle(lines: list[str]) -> None:
        if not progress:
            write(lines)
            return
        pending: list[str] = []
        for line in lines:
            parsed = parse_progress(line)
            if parsed is None:
                pending.append(line)
                continue
            write(pending)
            pending = []
            sink.progress(*parsed)
        write(pending)

    return handle
