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
        items = self.chunks
        if not items:
            return None
        if all(item.__class__ is bytes for item in items):  # the usual case: one parse for the whole stream
            datas: list[Any] = orjson.loads(b"[" + b",".join(items) + b"]")  # type: ignore[arg-type]
        else:
            datas = [orjson.loads(item) if isinstance(item, bytes) else item for item in items]
        first = datas[0]
        head = {"id": first.get("id"), "object": "chat.completion", "created": first.get("created"),
                "model": first.get("model")}
        if first.get("system_fingerprint") is not None:
            head["system_fingerprint"] = first["system_fingerprint"]
        choices: dict[int, _Choice] = {}
        for data in datas:
            for choice in data.get("choices") or ():
                index = choice.get("index", 0)
                state = choices.get(index)
                if state is None:
                    state = choices[index] = _Choice()
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content.__class__ is str:
                        state.content.append(content)
                    if content is None or len(delta) > 1:
                        state.merge(delta)
                reason = choice.get("finish_reason")
                if reason:
                    state.finish = reason
        if not choices:
            return None
        return {**head, "choices": [choices[i].message(i) for i in sorted(choices)], "usage": {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}}


class _Choice:
    """One choice of a stream, as its deltas arrive."""

    __slots__ = ("content", "finish", "refusal", "role", "tools")

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None

    def merge(self, delta: dict[str, Any]) -> None:
        """What a delta carries besides its content: the role, a refusal, tool calls."""
        if isinstance(delta.get("role"), str):
            self.role = delta["role"]
        if isinstance(delta.get("refusal"), str):
            self.refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            slot = self.tools.setdefault(call.get("index", 0), {"id": None, "type": "function",
                                                                "function": {"name": "", "arguments": ""}})
            if call.get("id"):
                slot["id"] = call["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""

    def message(self, index: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": "".join(self.content) or None}
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.tools:
            message["tool_calls"] = [self.tools[i] for i in sorted(self.tools)]
        return {"index": index, "message": message, "logprobs": None, "finish_reason": self.finish}
