"""Building Stellwerk's canonical answers (OpenAI ``chat.completion``, chunks, embeddings) from a provider's.

Shared by the translating adapters so that every provider's answer has the same
shape: the fields the official SDKs require, ``usage`` with cached and
reasoning tokens, tool calls with ids, and streams that end with a usage chunk
(``choices: []``) so that the router's cost is exact.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from stellwerk.errors import Outcome, UpstreamError

from .base import Chunk

__all__ = [
    "ChunkWriter",
    "choice",
    "completion",
    "digest",
    "embeddings_list",
    "parse_object",
    "tool_call",
    "tool_call_id",
    "usage",
]


def parse_object(body: bytes, what: str = "answer") -> dict[str, Any]:
    """A JSON object from upstream (an answer, a stream event); anything else is a transient upstream fault
    (``RETRY_HERE``, reason ``malformed``)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(Outcome.RETRY_HERE, f"upstream {what} is malformed (not JSON)", reason="malformed") from None
    if not isinstance(data, dict):
        raise UpstreamError(Outcome.RETRY_HERE, f"upstream {what} is not a JSON object", reason="malformed")
    return data


def digest(*parts: object) -> str:
    """24 hex digits that depend only on ``parts``: stable ids for things a provider left unnamed."""
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:24]


def tool_call_id(seed: str, index: int, name: str) -> str:
    """A stable id for a tool call whose provider gave none: the same answer always yields the same ids.

    ``seed`` identifies the answer (a response id, a creation time), ``index`` the call within it.
    """
    return f"call_{digest(seed, index, name)}"


def tool_call(call_id: str, name: str, arguments: Any, index: int | None = None) -> dict[str, Any]:
    """An OpenAI tool call; ``arguments`` as an object (encoded to a JSON string) or already a string."""
    encoded = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
    call: dict[str, Any] = {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}
    if index is not None:
        call = {"index": index, **call}
    return call


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """OpenAI's ``usage``: ``completion`` includes ``reasoning`` tokens, ``prompt`` includes ``cached`` ones."""
    data: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}
    if cached:
        data["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        data["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return data


def choice(index: int, content: str | None, tool_calls: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    """One choice of a ``chat.completion``; its content is null when the answer is only tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": content if content or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def completion(answer_id: str, created: int, model: str, choices: list[dict[str, Any]],
               usage_data: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": answer_id, "object": "chat.completion", "created": created, "model": model,
                            "choices": choices}
    if usage_data is not None:
        data["usage"] = usage_data
    return data


class ChunkWriter:
    """Writes the ``chat.completion.chunk`` dicts of one streamed answer.

    The first delta of each choice carries ``role: assistant``, as OpenAI's do.
    """

    __slots__ = ("_started", "created", "id", "model")

    def __init__(self, answer_id: str, created: int, model: str) -> None:
        self.id = answer_id
        self.created = created
        self.model = model
        self._started: set[int] = set()

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": choices}

    def delta(self, delta: dict[str, Any], finish: str | None = None, index: int = 0) -> Chunk:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        return self._chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]), None

    def usage(self, usage_data: dict[str, Any]) -> Chunk:
        """The final chunk: no choices, only usage (the router reads it; clients see it if they asked)."""
        return {**self._chunk([]), "usage": usage_data}, None


def embeddings_list(vectors: list[list[float]], model: str, prompt_tokens: int) -> dict[str, Any]:
    """OpenAI's embeddings answer. Vectors are floats; the SDKs accept them whatever encoding they asked for."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
