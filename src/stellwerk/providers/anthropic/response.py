"""Anthropic Messages answers → OpenAI ``chat.completion`` and ``chat.completion.chunk`` dicts.

A complete message: text blocks become ``message.content``, ``tool_use`` blocks
``message.tool_calls`` (``input`` → ``arguments`` JSON), ``stop_reason`` the
``finish_reason`` (see :data:`~.wire.STOP_TO_FINISH`), ``usage`` OpenAI's usage
with cached input counted in ``prompt_tokens`` and ``prompt_tokens_details``.
Thinking blocks are left out.

A stream (https://docs.claude.com/en/docs/build-with-claude/streaming), event by event::

    message_start                       remembered (id, model, input usage); no chunk yet
    content_block_start text            no chunk (unless it carries text)
    content_block_start tool_use        tool_calls delta: index, id, type, name, arguments ""
    content_block_delta text_delta      content delta
    content_block_delta input_json_delta  tool_calls delta: index, arguments fragment
    content_block_stop, ping            nothing
    message_delta                       a chunk with finish_reason, then a usage chunk (choices: [])
    message_stop                        done
    error                               raises the classified UpstreamError

The first chunk also carries ``role: assistant``. It is held back until there is
content, so an upstream that fails right after ``message_start`` (overloaded,
say) fails before the stream's first chunk and can still be failed over.
"""

from __future__ import annotations

from typing import Any

import orjson

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk
from stellwerk.providers.shapes import ChunkWriter, choice, completion, tool_call
from stellwerk.providers.sse import SSEParser

from .errors import error_from_event
from .wire import STOP_TO_FINISH, as_object, openai_usage

__all__ = ["AnthropicStreamDecoder", "to_completion"]


def to_completion(data: dict[str, Any], created: int) -> dict[str, Any]:
    """An Anthropic ``message`` → an OpenAI ``chat.completion``."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            calls.append(tool_call(str(block.get("id")), str(block.get("name")), block.get("input")))
    content = "".join(texts) if texts or not calls else None
    finish = STOP_TO_FINISH.get(str(data.get("stop_reason")), "stop")
    usage_data = data.get("usage")
    return completion(str(data.get("id")), created, str(data.get("model")), [choice(0, content, calls, finish)],
                      openai_usage(usage_data) if isinstance(usage_data, dict) else None)


class AnthropicStreamDecoder:
    """Decodes one Anthropic SSE stream into OpenAI chunks (see the module docstring)."""

    __slots__ = ("_created", "_sse", "_tools", "_usage", "_writer", "done", "prompt_usage")

    def __init__(self, created: int) -> None:
        self._sse = SSEParser()
        self._created = created
        self._writer = ChunkWriter("", created, "")
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}
        """Content block index → OpenAI tool call index."""
        self.done = False
        self.prompt_usage: dict[str, Any] | None = None
        """The prompt's counts (OpenAI-shaped usage) as ``message_start`` reported them, before the answer."""

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for event, payload in self._sse.feed(data):
            if not payload or self.done:
                continue
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise UpstreamError(Outcome.RETRY_HERE, "upstream sent a malformed stream event",
                                    reason="malformed") from None
            if not isinstance(obj, dict):
                raise UpstreamError(Outcome.RETRY_HERE, "upstream sent a stream event that is not an object",
                                    reason="malformed")
            self._event(str(obj.get("type") or event), obj, payload, chunks)
        return chunks

    def _event(self, kind: str, obj: dict[str, Any], payload: bytes, chunks: list[Chunk]) -> None:
        delta = as_object(obj.get("delta"))
        if kind == "content_block_delta":
            if delta.get("type") == "text_delta" and delta.get("text"):
                chunks.append(self._writer.delta({"content": delta["text"]}))
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                tool = self._tools.get(obj.get("index", -1))
                if tool is not None:
                    chunks.append(self._writer.delta({"tool_calls": [
                        {"index": tool, "function": {"arguments": delta["partial_json"]}}]}))
        elif kind == "content_block_start":
            self._block_start(obj.get("index", -1), as_object(obj.get("content_block")), chunks)
        elif kind == "message_start":
            message = as_object(obj.get("message"))
            self._writer = ChunkWriter(str(message.get("id") or ""), self._created, str(message.get("model") or ""))
            self._usage = dict(as_object(message.get("usage")))
            self.prompt_usage = openai_usage(self._usage)
        elif kind == "message_delta":
            self._usage.update({k: v for k, v in as_object(obj.get("usage")).items() if v is not None})
            chunks.append(self._writer.delta({}, STOP_TO_FINISH.get(str(delta.get("stop_reason")), "stop")))
            chunks.append(self._writer.usage(openai_usage(self._usage)))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise error_from_event(obj, payload)

    def _block_start(self, index: int, block: dict[str, Any], chunks: list[Chunk]) -> None:
        if block.get("type") == "text" and block.get("text"):
            chunks.append(self._writer.delta({"content": block["text"]}))
        elif block.get("type") == "tool_use":
            tool = self._tools[index] = len(self._tools)
            initial = block.get("input")
            call = tool_call(str(block.get("id")), str(block.get("name")), orjson.dumps(initial).decode() if initial
                             else "", index=tool)
            chunks.append(self._writer.delta({"tool_calls": [call]}))
