"""Helpers shared by the translating-provider tests (gemini, ollama, bedrock).

* hypothesis strategies for canonical (OpenAI-format) chat requests, and the "meaning"
  of a request: the flat sequence of what each side said, which translation must keep;
* feeding a stream decoder its bytes cut at arbitrary points;
* a replaying fake upstream on :class:`~stellwerk.http.server.HTTPServer`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse
from stellwerk.providers import Chunk, StreamDecoder
from support import Captured

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg+M/A8B8ABf4C/g3C0KkAAAAASUVORK5CYII="
PNG_URI = f"data:image/png;base64,{PNG}"
CLOCK = 1_700_000_000.0


def clock() -> float:
    return CLOCK


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


# -- canonical requests -------------------------------------------------------------------------------------------
_words = st.text(alphabet="abcdefghij klmnopqrstuvwxyzÄé漢", min_size=1, max_size=12).filter(lambda s: s.strip() != "")
_names = st.sampled_from(["get_weather", "get_time", "search", "lookup_user"])
_args = st.dictionaries(st.sampled_from(["city", "days", "zone", "q"]),
                        st.one_of(st.integers(-5, 50), _words), max_size=3)


@st.composite
def _user(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"role": "user", "content": draw(_words)}
    parts: list[dict[str, Any]] = [{"type": "text", "text": t} for t in draw(st.lists(_words, min_size=1, max_size=3))]
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), {"type": "image_url", "image_url": {"url": PNG_URI}})
    return {"role": "user", "content": parts}


@st.composite
def _assistant_turn(draw: st.DrawFn, turn: int) -> list[dict[str, Any]]:
    """An assistant message, followed by the results of the tools it called (if it called any)."""
    calls = [{"id": f"call_{turn}_{k}", "type": "function",
              "function": {"name": draw(_names), "arguments": json.dumps(draw(_args))}}
             for k in range(draw(st.integers(0, 2)))]
    text = draw(st.one_of(st.none(), _words)) if calls else draw(_words)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    results = [{"role": "tool", "tool_call_id": c["id"], "content": draw(_words)} for c in calls]
    return [message, *results]


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid canonical request: optional system prompt, alternating turns, tools and tool results, params."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(_words)})
    for turn in range(draw(st.integers(1, 3))):
        messages.append(draw(_user()))
        if turn or draw(st.booleans()):
            messages.extend(draw(_assistant_turn(turn)))
    if messages[-1]["role"] != "user":
        messages.append(draw(_user()))
    body: dict[str, Any] = {"model": "chat", "messages": messages}
    optional = {
        "temperature": st.floats(0, 2, allow_nan=False).map(lambda x: round(x, 2)),
        "top_p": st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 2)),
        "max_tokens": st.integers(1, 4096),
        "seed": st.integers(0, 2**31),
        "stop": st.one_of(_words, st.lists(_words, min_size=1, max_size=3)),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    if draw(st.booleans()):
        body["tools"] = [{"type": "function", "function": {
            "name": name, "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
            for name in ("get_weather", "get_time", "search", "lookup_user")]
    return body


Item = tuple[Any, ...]


def canonical_meaning(body: dict[str, Any], *, join_texts: bool = False) -> tuple[list[str], list[Item]]:
    """``(system texts, items)``: items are ``(side, kind, ...)`` with side ``user`` or ``assistant``.

    Tool results are said by the user side (every provider but OpenAI puts them there), named by the
    function of their call. ``join_texts``: a message's texts as one, joined by newlines, before its
    images (providers that take one string and a list of images per message).
    """
    names = {c["id"]: c["function"]["name"] for m in body["messages"] for c in m.get("tool_calls") or ()}
    system: list[str] = []
    items: list[Item] = []
    for m in body["messages"]:
        role, content = m["role"], m.get("content")
        if role in ("system", "developer"):
            system.append(content if isinstance(content, str) else "\n".join(p["text"] for p in content))
            continue
        if role == "tool":
            items.append(("user", "result", names[m["tool_call_id"]], content))
            continue
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        texts = [p["text"] for p in parts if p["type"] == "text" and p["text"]]
        images = [("image", "image/png", p["image_url"]["url"].partition(",")[2]) for p in parts if p["type"] == "image_url"]
        if join_texts:
            said: list[Item] = ([("text", "\n".join(texts))] if texts else []) + images
        else:
            said = [("text", p["text"]) if p["type"] == "text" else
                    ("image", "image/png", p["image_url"]["url"].partition(",")[2])
                    for p in parts if p["type"] != "text" or p["text"]]
        items.extend((role, *x) for x in said)
        for call in m.get("tool_calls") or ():
            items.append(("assistant", "call", call["function"]["name"], json.loads(call["function"]["arguments"])))
    return system, items


# -- streams ------------------------------------------------------------------------------------------------------
def feed_in_pieces(decoder: StreamDecoder, data: bytes, cuts: Sequence[int]) -> list[Chunk]:
    """Feed ``data`` cut at the (sorted, clamped) positions ``cuts``; return every chunk produced."""
    points = sorted({max(0, min(len(data), c)) for c in cuts} | {0, len(data)})
    chunks: list[Chunk] = []
    for start, end in pairwise(points):
        chunks.extend(decoder.feed(data[start:end]))
    return chunks


def cut_points(size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, size), max_size=12)


# -- a replaying upstream -------------------------------------------------------------------------------------------
Reply = Callable[[Request], Awaitable[Response | StreamingResponse]]


async def chunks_of(data: bytes, size: int = 37) -> AsyncIterator[bytes]:
    """``data`` as a streamed body, in small pieces (with a yield between, as a network would)."""
    for i in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[i:i + size]


class ReplayUpstream:
    """A fake provider: records each request and answers with ``reply`` (replaceable at any time)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[Captured] = []
        self.server = HTTPServer(self._handle)

    async def _handle(self, req: Request) -> Response | StreamingResponse:
        self.requests.append(Captured(req.method, req.path, req.query, dict(req.headers), req.body))
        return await self.reply(req)

    async def start(self) -> ReplayUpstream:
        await self.server.start("127.0.0.1", 0)
        return self

    async def close(self) -> None:
        await self.server.close(grace=0.5)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    @property
    def last(self) -> Captured:
        return self.requests[-1]


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, data if isinstance(data, bytes) else orjson.dumps(data), headers)


# -- AWS event stream: a small encoder (the decoder under test is Stellwerk's) ---------------------------------------------
HeaderSpec = tuple[int, Any]
"""``(value type, value)``: 0/1 bools, 2 int8, 3 int16, 4 int32, 5 int64, 6 bytes, 7 string, 8 timestamp, 9 uuid."""


def _header_value(kind: int, value: Any) -> bytes:
    import struct

    if kind in (0, 1):
        return b""
    fixed = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}
    if kind in fixed:
        return struct.pack(fixed[kind], value)
    if kind in (6, 7):
        raw = value.encode() if kind == 7 else value
        return struct.pack(">H", len(raw)) + raw
    assert kind == 9 and len(value) == 16
    return bytes(value)


def encode_event(headers: dict[str, Any], payload: bytes) -> bytes:
    """One event-stream message. Header values: ``str`` (string), ``bytes``, ``bool``, ``int`` (int32),
    or an explicit ``(type, value)`` pair."""
    import struct
    import zlib

    encoded = b""
    for name, value in headers.items():
        if isinstance(value, tuple):
            kind, value = value
        elif isinstance(value, bool):
            kind = 0 if value else 1
        elif isinstance(value, int):
            kind = 4
        else:
            kind = 7 if isinstance(value, str) else 6
        raw_name = name.encode()
        encoded += bytes([len(raw_name)]) + raw_name + bytes([kind]) + _header_value(kind, value)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """Fixture events (``{"headers": {...}, "payload": {...}}``) as an event-stream body."""
    return b"".join(encode_event(e["headers"], orjson.dumps(e["payload"])) for e in events)
