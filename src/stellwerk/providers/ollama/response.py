"""Ollama answers → canonical (OpenAI) answers: ``/api/chat``, its NDJSON stream, ``/api/embed``.

==================================  ===============================================
Ollama                              OpenAI
==================================  ===============================================
``message.content``                 ``choices[0].message.content``
``message.tool_calls[].function``   ``tool_calls[]`` (arguments encoded; stable ids from
                                    ``created_at`` when Ollama gives none)
``done_reason`` ``length``          ``length``; otherwise ``stop`` / ``tool_calls``
``prompt_eval_count``/``eval_count`` ``usage.prompt_tokens`` / ``completion_tokens``
``created_at`` (RFC 3339)           ``created``
==================================  ===============================================

Streams are one JSON object per line; the line with ``done: true`` carries the
counts and ends the stream (finish chunk, then usage chunk). An ``{"error"}``
line raises. Ollama leaves ``prompt_eval_count`` out when the whole prompt was
cached; it then counts as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk
from stellwerk.providers.ndjson import NDJSONParser
from stellwerk.providers.shapes import (
    ChunkWriter,
    choice,
    completion,
    digest,
    embeddings_list,
    parse_object,
    tool_call,
    tool_call_id,
    usage,
)

from .errors import error_from_payload

__all__ = ["OllamaStreamDecoder", "chat_completion", "embeddings_answer"]


def _created(data: dict[str, Any], clock: Callable[[], float]) -> int:
    text = data.get("created_at")
    if isinstance(text, str):
        try:
            return int(datetime.fromisoformat(text).timestamp())
        except ValueError:
            pass
    return int(clock())


def _usage(data: dict[str, Any]) -> dict[str, Any]:
    return usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))


def _finish(data: dict[str, Any], called_tools: bool) -> str:
    if data.get("done_reason") == "length":
        return "length"
    return "tool_calls" if called_tools else "stop"


def _tool_calls(message: dict[str, Any], seed: str, first: int, stream: bool) -> list[dict[str, Any]]:
    calls = []
    for offset, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        index = first + offset
        name = str(function.get("name") or "")
        call_id = str(call.get("id") or tool_call_id(seed, index, name))
        calls.append(tool_call(call_id, name, function.get("arguments") or {}, index if stream else None))
    return calls


def _message(data: dict[str, Any]) -> dict[str, Any]:
    message = data.get("message")
    return message if isinstance(message, dict) else {}


def _check(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UpstreamError(Outcome.RETRY_HERE, "upstream answer is not a JSON object", reason="malformed")
    if "error" in data:
        raise error_from_payload(data, 500)
    return data


def chat_completion(data: dict[str, Any], model: str, clock: Callable[[], float]) -> dict[str, Any]:
    """A non-streamed ``/api/chat`` answer as a ``chat.completion``."""
    _check(data)
    message = _message(data)
    created = _created(data, clock)
    seed = f"{data.get('created_at')}/{data.get('model')}"
    calls = _tool_calls(message, seed, 0, stream=False)
    text = str(message.get("content") or "")
    return completion(f"chatcmpl-{digest(seed)}", created, str(data.get("model") or model),
                      [choice(0, text, calls, _finish(data, bool(calls)))],
                      _usage(data))


class OllamaStreamDecoder:
    """NDJSON lines of a streamed ``/api/chat`` → ``chat.completion.chunk`` dicts."""

    __slots__ = ("_calls", "_clock", "_lines", "_model", "_seed", "_writer", "done")

    def __init__(self, model: str, clock: Callable[[], float]) -> None:
        self._lines = NDJSONParser()
        self._model = model
        self._clock = clock
        self._writer: ChunkWriter | None = None
        self._seed = ""
        self._calls = 0
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for line in self._lines.feed(data):
            if not self.done:
                chunks.extend(self._line(line))
        return chunks

    def _line(self, line: bytes) -> list[Chunk]:
        data = _check(parse_object(line, "stream line"))
        if self._writer is None:
            self._seed = f"{data.get('created_at')}/{data.get('model')}"
            self._writer = ChunkWriter(f"chatcmpl-{digest(self._seed)}",
                                       _created(data, self._clock), str(data.get("model") or self._model))
        writer = self._writer
        message = _message(data)
        delta: dict[str, Any] = {}
        if isinstance(message.get("content"), str) and message["content"]:
            delta["content"] = message["content"]
        calls = _tool_calls(message, self._seed, self._calls, stream=True)
        if calls:
            self._calls += len(calls)
            delta["tool_calls"] = calls
        chunks = [writer.delta(delta)] if delta else []
        if data.get("done"):
            self.done = True
            chunks.append(writer.delta({}, _finish(data, self._calls > 0)))
            chunks.append(writer.usage(_usage(data)))
        return chunks


def embeddings_answer(data: dict[str, Any], model: str) -> dict[str, Any]:
    vectors = _check(data).get("embeddings")
    if not isinstance(vectors, list) or not vectors or not all(isinstance(v, list) for v in vectors):
        raise UpstreamError(Outcome.RETRY_HERE, "upstream embeddings answer has no 'embeddings'", reason="malformed")
    return embeddings_list(vectors, str(data.get("model") or model), int(data.get("prompt_eval_count") or 0))
