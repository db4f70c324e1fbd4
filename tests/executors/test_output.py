"""Output lines: splitting, capping and progress lines."""

from __future__ import annotations

import pytest

from clocktower.executors._output import LineSplitter, parse_progress, stream_writer

from .conftest import RecordingSink


def test_lines_across_chunks() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\r\nthree\n\n") == ["two", "three", ""]
    assert splitter.feed(b"last") == []
    assert splitter.flush() == ["last"]
    assert splitter.flush() == []


def test_a_long_line_is_split_at_the_cap() -> None:
    splitter = LineSplitter(max_line=4)
    assert splitter.feed(b"abcdefghij\nxy") == ["abcd", "efgh", "ij"]
    assert splitter.feed(b"z") == []
    assert splitter.flush() == ["xyz"]


def test_a_split_does_not_cut_a_character_in_two() -> None:
    splitter = LineSplitter(max_line=4)
    assert splitter.feed("abcé€\n".encode()) == ["abc", "é", "€"]


def test_invalid_utf8_is_replaced() -> None:
    assert LineSplitter().feed(b"bad \xff byte\n") == ["bad \ufffd byte"]


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("::progress 40/100", (40, 100)),
        ("::progress 40 / 100 ", (40, 100)),
        ("::progress 40%", (40, 100)),
        ("::progress 2.5", (2.5, None)),
        ("::progress", None),
        ("::progress forty", None),
        ("::progress 40/", None),
        (" ::progress 40", None),
        ("progress 40", None),
    ],
)
def test_parse_progress(line: str, parsed: tuple[float, float | None] | None) -> None:
    assert parse_progress(line) == parsed


def test_stream_writer_keeps_order_around_progress_lines() -> None:
    sink = RecordingSink()
    handle = stream_writer(sink, "stdout", progress=True)
    handle(["a", "::progress 1/2", "b", "c"])
    assert sink.text() == ["a", "b", "c"]
    assert sink.progress_updates == [(1, 2)]
