"""A stored answer: its bytes, how it is replayed as a stream, and how a passing stream is collected into one.

An entry is ``META\\nANSWER``: a small JSON object (usage, cost, deployment, the prompt a semantic entry
was stored for) and the OpenAI ``chat.completion`` bytes as they were sent. Streams and non-streams
share entries: a streamed answer is collected into a ``chat.completion``, and a stored answer is
replayed to a streaming client as ``chat.completion.chunk`` events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

from stellwerk.usage import Usage

__all__ = ["Collector", "Entry", "decode", "encode", "replay_chunks", "storable"]


class Entry(msgspec.Struct):
    answer: dict[str, Any]
    raw: bytes
    usage: Usage
    cost: float
    deployment: str
    prompt: str


def encode(raw: bytes, usage: Usage, cost: float, deployment: str, prompt: str) -> bytes:
    meta = orjson.dumps({"u": [usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens], "c": cost,
                         "d": deployment, "p": prompt})
    return meta + b"\n" + raw


def decode(value: bytes) -> Entry | None:
    """The entry, or None when the bytes are not one (another version wrote them: a miss, not an error)."""
    head, sep, raw = value.partition(b"\n")
    if not sep:
        return None
    try:
        meta = orjson.loads(head)
        answer = orjson.loads(raw)
        p, c, cached = meta["u"]
        return Entry(answer, raw, Usage(p, c, cached), float(meta["c"]), str(meta["d"]), str(meta["p"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def storable(answer: dict[str, Any]) -> bool:
    """Only complete answers: every choice finished, none by the content filter."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for choice in choices:
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if not isinstance(reason, str) or reason == "content_filter":
            return False
    return True


def replay_chunks(answer: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A stored ``chat.completion`` as the ``chat.completion.chunk`` events a stream would have sent."""
    head = {"id": answer.get("id"), "object": "chat.completion.chunk", "created": answer.get("created"),
            "model": answer.get("model")}
    if answer.get("system_fingerprint") is not None:
        head["system_fingerprint"] = answer["system_fingerprint"]
    chunks: list[dict[str, Any]] = []

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        chunks.append({**head, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                            "finish_reason": finish}]})

    for choice in answer.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunk(index, {"role": message.get("role", "assistant"), "content": ""})
        if message.get("refusal"):
            chunk(index, {"refusal": message["refusal"]})
        if message.get("content"):
            chunk(index, {"content": message["content"]})
        for position, call in enumerate(message.get("tool_calls") or ()):
            chunk(index, {"tool_calls": [{"index": position, **call}]})
        chunk(index, {}, choice.get("finish_reason"))
    if include_usage and answer.get("usage") is not None:
        chunks.append({**head, "choices": [], "usage": answer["usage"]})
    return chunks


class Collector:
    """Collects a stream's chunks as they pass (``stream.tap(collector)``): bytes when the chunk has them,
    the dict otherwise; nothing is parsed until the stream has completed and its answer is stored."""

    __slots__ = ("chunks", "left", "overflow")

    def __init__(self, max_bytes: int) -> None:
        self.chunks: list[dict[str, Any] | bytes] = []
        self.left = max_bytes
        self.overflow = False
        """More than ``max_bytes`` passed: the answer is not collected (nor stored)."""

    def __call__(self, batch: Sequence[tuple[Any, bytes | None]]) -> None:
        if self.overflow:
            return
        append = self.chunks.append
        for data, raw in batch:
            if raw is not None:
                self.left -= len(raw)
                append(raw)
            else:
                self.left -= 256  # a translated chunk: about its size as JSON
                append(data)
        if self.left < 0:
            self.overflow = True
            self.chunks.clear()

    def answer(self, usage: Usage) -> dict[str, Any] | None:
        """The ``chat.completion`` the chunks make up, or None when they do not make a complete one."""
        head: dict[str, Any] | None = None
        choices: dict[int, dict[str, Any]] = {}
        for item in self.chunks:
            data = orjson.loads(item) if isinstance(item, bytes) else item
            if head is None:
                head = {"id": data.get("id"), "object": "chat.completion", "created": data.get("created"),
                        "model": data.get("model")}
                if data.get("system_fingerprint") is not None:
                    head["system_fingerprint"] = data["system_fingerprint"]
            for choice in data.get("choices") or ():
                _merge(choices, choice)
        if head is None or not choices:
            return None
        out = []
        for index in sorted(choices):
            state = choices[index]
            message: dict[str, Any] = {"role": state["role"], "content": "".join(state["content"]) or None}
            if state["refusal"]:
                message["refusal"] = "".join(state["refusal"])
            if state["tools"]:
                message["tool_calls"] = [state["tools"][i] for i in sorted(state["tools"])]
            out.append({"index": index, "message": message, "logprobs": None, "finish_reason": state["finish"]})
        return {**head, "choices": out, "usage": {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}}


def _merge(choices: dict[int, dict[str, Any]], choice: Any) -> None:
    if not isinstance(choice, dict):
        return
    index = choice.get("index", 0)
    state = choices.get(index)
    if state is None:
        state = choices[index] = {"role": "assistant", "content": [], "refusal": [], "tools": {}, "finish": None}
    delta = choice.get("delta") or {}
    if isinstance(delta.get("role"), str):
        state["role"] = delta["role"]
    if isinstance(delta.get("content"), str):
        state["content"].append(delta["content"])
    if isinstance(delta.get("refusal"), str):
        state["refusal"].append(delta["refusal"])
    for call in delta.get("tool_calls") or ():
        slot = state["tools"].setdefault(call.get("index", 0), {"id": None, "type": "function",
                                                                "function": {"name": "", "arguments": ""}})
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        slot["function"]["name"] += function.get("name") or ""
        slot["function"]["arguments"] += function.get("arguments") or ""
    if choice.get("finish_reason"):
        state["finish"] = choice["finish_reason"]
