"""Helpers for the sim's protocol tests: a running sim with an HTTP client, one chat request per protocol,
and decoders for the stream framings (SSE, NDJSON, AWS event-stream) written from the specifications."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from stellwerk.sim import Profile, SimProvider
from support import GUARD

KEY = "sim-key-0123456789"
SIGV4 = f"AWS4-HMAC-SHA256 Credential={KEY}/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00"
AUTH: dict[str, dict[str, str]] = {
    "openai": {"authorization": f"Bearer {KEY}"},
    "anthropic": {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": KEY},
    "ollama": {"authorization": f"Bearer {KEY}"},
    "bedrock": {"authorization": SIGV4},
}
PROMPT = "Say something about trains."  # 27 characters: 7 prompt tokens
WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
WEATHER_ARGS = {"city": "sim", "days": 1}


@asynccontextmanager
async def running(
    protocol: str, *, api_key: str | None = KEY, timeout: float | httpx.Timeout = GUARD, **fields: Any
) -> AsyncIterator[tuple[SimProvider, httpx.AsyncClient]]:
    """A started sim speaking ``protocol`` (profile ``fields``, default 8 words, seed 3) and a client
    that sends the protocol's credentials."""
    fields = {"output_tokens": 8, "seed": 3, **fields}
    sim = SimProvider(Profile.from_dict(fields), protocol=protocol, api_key=api_key)
    await sim.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sim.port}"
    try:
        async with httpx.AsyncClient(base_url=url, headers=AUTH[protocol], timeout=timeout, verify=False) as client:
            yield sim, client
    finally:
        await sim.close(grace=0.2)


def chat_request(protocol: str, *, stream: bool = False, tools: bool = False, text: str = PROMPT) -> tuple[str, dict[str, Any]]:
    """``(path, body)`` of a minimal chat request in ``protocol`` (model ``m``)."""
    if protocol == "openai":
        body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
        if tools:
            body["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
        return "/v1/chat/completions", body
    if protocol == "anthropic":
        body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": text}], "stream": stream}
        if tools:
            body["tools"] = [{"name": "get_weather", "input_schema": WEATHER}]
        return "/v1/messages", body
    if protocol == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER}]}]
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/m:{method}", body
    if protocol == "ollama":
        body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
        if tools:
            body["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
        return "/api/chat", body
    assert protocol == "bedrock"
    body = {"messages": [{"role": "user", "content": [{"text": text}]}]}
    if tools:
        body["toolConfig"] = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER}}}]}
    return f"/model/m/{'converse-stream' if stream else 'converse'}", body


# -- stream decoders ---------------------------------------------------------------------------------------------------
def sse_events(raw: bytes) -> list[tuple[str, Any]]:
    """``(event name or "", parsed JSON data)`` per SSE event; accepts LF or CRLF line ends."""
    events = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not block:
            continue
        name, data = "", []
        for line in block.split(b"\n"):
            field, _, value = line.partition(b": ")
            if field == b"event":
                name = value.decode()
            elif field == b"data":
                data.append(value)
        events.append((name, orjson.loads(b"\n".join(data))))
    return events


def ndjson(raw: bytes) -> list[Any]:
    assert raw.endswith(b"\n"), "NDJSON ends each object with a newline"
    return [orjson.loads(line) for line in raw.splitlines()]


def decode_frames(raw: bytes) -> list[tuple[dict[str, str], Any]]:
    """``(headers, parsed JSON payload)`` per AWS event-stream frame, checking lengths and both CRCs."""
    frames = []
    offset = 0
    while offset < len(raw):
        total, headers_length, prelude_crc = struct.unpack_from("!III", raw, offset)
        assert prelude_crc == zlib.crc32(raw[offset : offset + 8]), "prelude CRC"
        message = raw[offset : offset + total]
        assert len(message) == total, "truncated frame"
        (message_crc,) = struct.unpack("!I", message[-4:])
        assert message_crc == zlib.crc32(message[:-4]), "message CRC"
        headers: dict[str, str] = {}
        pos, end = 12, 12 + headers_length
        while pos < end:
            name_length = message[pos]
            name = message[pos + 1 : pos + 1 + name_length].decode()
            pos += 1 + name_length
            assert message[pos] == 7, "string header"
            (value_length,) = struct.unpack_from("!H", message, pos + 1)
            headers[name] = message[pos + 3 : pos + 3 + value_length].decode()
            pos += 3 + value_length
        frames.append((headers, orjson.loads(message[end:-4])))
        offset += total
    return frames
