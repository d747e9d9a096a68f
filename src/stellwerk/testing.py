"""Test doubles for code built on Stellwerk (and for Stellwerk's own tests), type-checked with the package.

:class:`ScriptedResponse` is an :class:`~stellwerk.http.transport.UpstreamResponse`
whose status, headers and body (or stream chunks) are given in advance. A
transport double returns it from ``request``; a chunk that is an exception is
raised by ``next_chunk`` (a connection cut mid-stream)::

    ScriptedResponse(200, body=b'{"choices": []}')
    ScriptedResponse(chunks=[b"data: {...}\\n\\n", ReadError("cut")])
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from stellwerk.http.transport import UpstreamResponse

__all__ = ["ScriptedResponse"]


class ScriptedResponse:
    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"",
                 chunks: Sequence[bytes | Exception] = ()) -> None:
        self.status = status
        self.headers: dict[str, str] = headers or {}
        self._body = body
        self._chunks: collections.deque[bytes | Exception] = collections.deque(chunks)
        self.closed = False

    async def read(self, timeout: float | None = None) -> bytes:
        return self._body

    async def next_chunk(self, idle_timeout: float | None = None) -> bytes:
        if not self._chunks:
            return b""
        item = self._chunks.popleft()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self, finished: bool = False) -> None:
        self.closed = True


def _conforms(response: ScriptedResponse) -> UpstreamResponse:
    return response  # mypy checks that the double has the shape of the real response
