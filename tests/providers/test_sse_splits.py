"""SSE framing under every way of splitting the bytes: one byte at a time, empty reads, CRLF and CR line ends.

A regression test for a blank line whose bytes arrived in separate reads with an empty read between them
(found by the property test in tests/providers/anthropic): the parser must look at the end of everything it
kept, not only at the last read.
"""

from __future__ import annotations

import itertools

import pytest

from stellwerk.providers.sse import SSEParser

STREAM = b"event: a\ndata: one\n\ndata: two\ndata: lines\n\n: comment\n\nevent: b\ndata: {}\n\n"
EXPECTED = [("a", b"one"), ("", b"two\nlines"), ("b", b"{}")]


def parse(pieces: list[bytes]) -> list[tuple[str, bytes]]:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    assert parser.pending == b""
    return events


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_one_byte_at_a_time_with_empty_reads_between(ending: bytes) -> None:
    data = STREAM.replace(b"\n", ending)
    pieces = [p for byte in data for p in (bytes([byte]), b"")]
    assert parse(pieces) == EXPECTED


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_every_two_cuts(ending: bytes) -> None:
    data = STREAM.replace(b"\n", ending)
    for a, b in itertools.combinations_with_replacement(range(len(data) + 1), 2):
        assert parse([data[:a], data[a:b], data[b:]]) == EXPECTED, (a, b)
