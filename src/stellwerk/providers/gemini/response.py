"""Gemini answers → canonical (OpenAI) answers: ``generateContent``, its SSE stream, embeddings.

==========================================  =========================================
Gemini                                      OpenAI
==========================================  =========================================
``candidates[i].content.parts[].text``      ``choices[i].message.content`` (thoughts skipped)
``…parts[].functionCall {id?, name, args}`` ``tool_calls[]`` (stable ids when Gemini gives none)
finishReason STOP / MAX_TOKENS              ``stop`` (``tool_calls`` after calls) / ``length``
SAFETY, RECITATION, BLOCKLIST,              ``content_filter``
PROHIBITED_CONTENT, SPII, IMAGE_SAFETY
``promptFeedback.blockReason``, no answer   ``UpstreamError(CONTENT_POLICY)``
``usageMetadata``                           ``usage``: prompt (+ tool-use prompt), candidates + thoughts,
                                            ``cachedContentTokenCount`` → cached, thoughts → reasoning
==========================================  =========================================

Streams (``streamGenerateContent?alt=sse``) send one ``GenerateContentResponse``
per event and no end marker; the decoder ends the stream at the event whose
candidates all carry a ``finishReason``, with a finish chunk and a usage chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk
from stellwerk.providers.shapes import (
    ChunkWriter,
    choice,
    completion,
    embeddings_list,
    parse_object,
    tool_call,
    tool_call_id,
    usage,
)
from stellwerk.providers.sse import SSEParser

from .errors import error_from_payload
from .request import join_signature

__all__ = ["GeminiStreamDecoder", "chat_completion", "embeddings_answer", "finish_reason"]

_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                       "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})


def finish_reason(reason: str | None, called_tools: bool) -> str | None:
    if not reason:
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def _usage(data: dict[str, Any]) -> dict[str, Any] | None:
    meta = data.get("usageMetadata")
    if not isinstance(meta, dict):
        return None
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return usage(int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
                 int(meta.get("candidatesTokenCount") or 0) + thoughts,
                 cached=int(meta.get("cachedContentTokenCount") or 0), reasoning=thoughts)


def _check_blocked(data: dict[str, Any]) -> None:
    if "error" in data and "candidates" not in data:
        code = data["error"].get("code") if isinstance(data["error"], dict) else None
        raise error_from_payload(data, code if isinstance(code, int) else 500)
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason and not data.get("candidates"):
        raise UpstreamError(Outcome.CONTENT_POLICY, f"Gemini refused the prompt (blockReason {reason})",
                            code=str(reason))


class _Calls:
    """Numbers a candidate's function calls across one answer (or stream) and gives them ids."""

    __slots__ = ("count", "seed")

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.count = 0

    def take(self, parts: list[Any], stream: bool) -> tuple[str, list[dict[str, Any]]]:
        """``(text, tool calls)`` of some parts."""
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in parts:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                name = str(call.get("name") or "")
                call_id = call.get("id") or tool_call_id(self.seed, self.count, name)
                call_id = join_signature(str(call_id), part.get("thoughtSignature"))
                calls.append(tool_call(call_id, name, call.get("args") or {}, self.count if stream else None))
                self.count += 1
        return "".join(texts), calls


def _parts(candidate: dict[str, Any]) -> list[Any]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def chat_completion(data: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """A ``generateContent`` answer as a ``chat.completion``."""
    _check_blocked(data)
    answer_id = str(data.get("responseId") or f"gemini-{created}")
    choices = []
    for position, candidate in enumerate(data.get("candidates") or ()):
        calls = _Calls(f"{answer_id}/{position}")
        text, tool_calls = calls.take(_parts(candidate), stream=False)
        finish = finish_reason(candidate.get("finishReason"), bool(tool_calls)) or "stop"
        choices.append(choice(int(candidate.get("index") or position), text, tool_calls, finish))
    return completion(f"chatcmpl-{answer_id}", created, str(data.get("modelVersion") or model), choices,
                      _usage(data))


class GeminiStreamDecoder:
    """SSE events of ``streamGenerateContent?alt=sse`` → ``chat.completion.chunk`` dicts."""

    __slots__ = ("_calls", "_clock", "_model", "_sse", "_usage", "_writer", "done")

    @property
    def prompt_usage(self) -> dict[str, Any] | None:
        """The latest usage the stream reported (Gemini counts the prompt from the first event on)."""
        return self._usage

    def __init__(self, model: str, clock: Callable[[], float]) -> None:
        self._sse = SSEParser()
        self._model = model
        self._clock = clock
        self._writer: ChunkWriter | None = None
        self._calls: dict[int, _Calls] = {}
        self._usage: dict[str, Any] | None = None
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for _event, payload in self._sse.feed(data):
            if payload and not self.done:
                chunks.extend(self._event(payload))
        return chunks

    def _event(self, payload: bytes) -> list[Chunk]:
        data = parse_object(payload, "stream event")
        _check_blocked(data)
        if self._writer is None:
            created = int(self._clock())
            answer_id = str(data.get("responseId") or f"gemini-{created}")
            self._writer = ChunkWriter(f"chatcmpl-{answer_id}", created, str(data.get("modelVersion") or self._model))
        writer = self._writer
        self._usage = _usage(data) or self._usage
        chunks: list[Chunk] = []
        candidates = [c for c in data.get("candidates") or () if isinstance(c, dict)]
        for position, candidate in enumerate(candidates):
            index = int(candidate.get("index") or position)
            calls = self._calls.setdefault(index, _Calls(f"{writer.id.removeprefix('chatcmpl-')}/{index}"))
            text, tool_calls = calls.take(_parts(candidate), stream=True)
            delta: dict[str, Any] = {}
            if text:
                delta["content"] = text
            if tool_calls:
                delta["tool_calls"] = tool_calls
            if delta:
                chunks.append(writer.delta(delta, index=index))
            finish = finish_reason(candidate.get("finishReason"), calls.count > 0)
            if finish:
                chunks.append(writer.delta({}, finish, index=index))
        if candidates and all(c.get("finishReason") for c in candidates):
            self.done = True
            if self._usage is not None:
                chunks.append(writer.usage(self._usage))
        return chunks


def embeddings_answer(data: dict[str, Any], model: str) -> dict[str, Any]:
    """``embedContent`` (``embedding``) or ``batchEmbedContents`` (``embeddings``) → an embeddings list."""
    items = data.get("embeddings") if "embeddings" in data else [data.get("embedding")]
    vectors = [item["values"] for item in items or () if isinstance(item, dict) and isinstance(item.get("values"), list)]
    if not vectors or len(vectors) != len(items or ()):
        raise UpstreamError(Outcome.RETRY_HERE, "upstream embeddings answer has no 'values'", reason="malformed")
    meta = data.get("usageMetadata")
    tokens = int(meta.get("promptTokenCount") or 0) if isinstance(meta, dict) else 0
    return embeddings_list(vectors, model, tokens)
