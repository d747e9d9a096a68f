"""Bedrock answers → canonical (OpenAI) answers: ``Converse`` JSON and the ``ConverseStream`` event stream.

========================================  =============================================
Converse                                  OpenAI
========================================  =============================================
``output.message.content[].text``         ``choices[0].message.content``
``…content[].toolUse {toolUseId, name,    ``tool_calls[]`` (id = toolUseId)
input}``
stopReason end_turn / stop_sequence       ``stop``
max_tokens / model_context_window_        ``length``
exceeded
tool_use                                  ``tool_calls``
guardrail_intervened / content_filtered   ``content_filter``
``usage`` input (+ cache read + cache     ``usage`` (``cacheReadInputTokens`` → cached)
write) / output tokens
========================================  =============================================

ConverseStream events (``:event-type``): ``messageStart`` → the role chunk;
``contentBlockStart`` with ``toolUse`` → a tool call's id and name;
``contentBlockDelta`` → text, or a piece of the tool input JSON;
``messageStop`` → the finish chunk; ``metadata`` → the usage chunk, and the end.
An ``:exception-type`` message raises its classified error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk
from stellwerk.providers.shapes import ChunkWriter, choice, completion, digest, parse_object, tool_call, usage

from .errors import exception_error
from .eventstream import EventMessage, EventStreamDecoder

__all__ = ["BedrockStreamDecoder", "converse_completion", "finish_reason"]

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "model_context_window_exceeded": "length", "tool_use": "tool_calls",
           "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}


def finish_reason(reason: Any) -> str:
    return _FINISH.get(str(reason), "stop")


def _usage(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    read = int(data.get("cacheReadInputTokens") or 0)
    prompt = int(data.get("inputTokens") or 0) + read + int(data.get("cacheWriteInputTokens") or 0)
    return usage(prompt, int(data.get("outputTokens") or 0), cached=read)


def converse_completion(data: dict[str, Any], model: str, created: int, seed: str) -> dict[str, Any]:
    """A ``Converse`` answer as a ``chat.completion`` (``seed`` names it: Bedrock gives no id in the body)."""
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict) or "stopReason" not in data:
        raise UpstreamError(Outcome.RETRY_HERE, "upstream answer has no 'output.message'", reason="malformed")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        use = block.get("toolUse")
        if isinstance(use, dict):
            calls.append(tool_call(str(use.get("toolUseId") or ""), str(use.get("name") or ""), use.get("input") or {}))
    text = "".join(texts)
    return completion(f"chatcmpl-{digest(seed)}", created, model,
                      [choice(0, text, calls, finish_reason(data.get("stopReason")))],
                      _usage(data.get("usage")))


class BedrockStreamDecoder:
    """``application/vnd.amazon.eventstream`` bytes of a ConverseStream → ``chat.completion.chunk`` dicts."""

    __slots__ = ("_clock", "_events", "_model", "_tools", "_writer", "done")

    def __init__(self, model: str, clock: Callable[[], float]) -> None:
        self._events = EventStreamDecoder()
        self._model = model
        self._clock = clock
        self._writer: ChunkWriter | None = None
        self._tools: dict[int, int] = {}
        """contentBlockIndex → tool call index."""
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for message in self._events.feed(data):
            if not self.done:
                chunks.extend(self._message(message))
        return chunks

    def _message(self, message: EventMessage) -> list[Chunk]:
        kind = message.header(":message-type")
        if kind == "exception":
            raise exception_error(message.header(":exception-type"), message.payload)
        if kind == "error":
            raise UpstreamError(Outcome.RETRY_HERE, f"{message.header(':error-code')}: "
                                f"{message.header(':error-message')}", reason="protocol")
        data = parse_object(message.payload, "stream event") if message.payload else {}
        if self._writer is None:
            now = self._clock()
            self._writer = ChunkWriter(f"chatcmpl-{digest(self._model, now)}", int(now), self._model)
        return self._event(self._writer, message.header(":event-type"), data)

    def _event(self, writer: ChunkWriter, event: str, data: dict[str, Any]) -> list[Chunk]:
        block = int(data.get("contentBlockIndex") or 0)
        if event == "messageStart":
            return [writer.delta({"content": ""})]
        if event == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = self._tools[block] = len(self._tools)
                call = tool_call(str(use.get("toolUseId") or ""), str(use.get("name") or ""), "", index)
                return [writer.delta({"tool_calls": [call]})]
        elif event == "contentBlockDelta":
            delta = data.get("delta") or {}
            if isinstance(delta.get("text"), str) and delta["text"]:
                return [writer.delta({"content": delta["text"]})]
            use = delta.get("toolUse")
            if isinstance(use, dict) and use.get("input") and block in self._tools:
                piece = {"index": self._tools[block], "function": {"arguments": str(use.get("input") or "")}}
                return [writer.delta({"tool_calls": [piece]})]
        elif event == "messageStop":
            return [writer.delta({}, finish_reason(data.get("stopReason")))]
        elif event == "metadata":
            self.done = True
            usage_data = _usage(data.get("usage"))
            return [writer.usage(usage_data)] if usage_data is not None else []
        return []
