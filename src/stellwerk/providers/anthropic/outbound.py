"""The front door's direction: canonical (OpenAI-format) answers → Anthropic messages and SSE events.

The inverse of :mod:`.response`. A ``chat.completion`` becomes a ``message``
(text, then one ``tool_use`` block per tool call); a stream of
``chat.completion.chunk`` dicts becomes the Anthropic event sequence
(https://docs.claude.com/en/docs/build-with-claude/streaming)::

    message_start                 usage.input_tokens: the gateway's estimate of the prompt (see below)
    content_block_start           a text block, or a tool_use block when a tool call begins
    ping                          once, after the first block starts
    content_block_delta           text_delta / input_json_delta (tool arguments as they come)
    content_block_stop            when the next block begins, and at the end
    message_delta                 stop_reason and the final usage
    message_stop

The stream's input figure is fixed when ``message_start`` is sent: the upstream's own count when it has
reported one by then (Anthropic's ``message_start``, Gemini's first event), else the gateway's estimate (an
OpenAI-format upstream reports its count only at the end). ``message_delta`` repeats it, so that clients that
read the input count from ``message_start`` (LangChain) and those that read it from ``message_delta`` (the
SDKs' accumulated message) agree, as on Anthropic's own streams. Its output count, and the gateway's own
accounting (``x-stellwerk-cost``, spend, metrics), are the upstream's exact counts.

Tool argument JSON that is not an object becomes ``{}`` in a complete message.
"""

from __future__ import annotations

from typing import Any

import orjson

from stellwerk.usage import Usage

from .wire import FINISH_TO_STOP, anthropic_usage, as_object, error_type_for

__all__ = ["MessageEvents", "error_body", "sse_event", "to_message"]


def sse_event(data: dict[str, Any]) -> bytes:
    """One Anthropic SSE event: ``event: {type}`` and its JSON data (the SDKs need the event name)."""
    return b"event: %s\ndata: %s\n\n" % (data["type"].encode(), orjson.dumps(data))


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error shape, for an answer body or an ``error`` event."""
    return {"type": "error", "error": {"type": error_type_for(status), "message": message}}


def to_message(data: dict[str, Any], message_id: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    """A ``chat.completion`` → an Anthropic ``message`` (its first choice)."""
    choice = _first_choice(data)
    message = as_object(choice.get("message"))
    content: list[dict[str, Any]] = []
    text = _text(message.get("content")) or _text(message.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
                        "input": _input(fn.get("arguments"))})
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": FINISH_TO_STOP.get(str(choice.get("finish_reason")), "end_turn"), "stop_sequence": None,
            "usage": usage}


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    return as_object(choices[0]) if isinstance(choices, list) and choices else {}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def _input(arguments: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


class MessageEvents:
    """Turns one stream of OpenAI chunks into Anthropic SSE event bytes.

    >>> events = MessageEvents("msg_1", "chat", input_tokens=12)
    >>> events.start(); events.feed(chunk); ...; events.finish(completion_tokens)
    """

    __slots__ = ("_block", "_cached", "_id", "_input_tokens", "_kind", "_pinged", "_stop", "_tools", "model")

    def __init__(self, message_id: str, model: str, input_tokens: int) -> None:
        self._id = message_id
        self.model = model
        """The model ``message_start`` names (set from the first chunk before :meth:`start`)."""
        self._input_tokens = input_tokens
        self._cached = 0
        self._block = -1
        """Index of the open content block (-1: none yet)."""
        self._kind: str | None = None
        """``text`` or ``tool_use`` while a block is open."""
        self._tools: dict[int, int] = {}
        """OpenAI tool call index → content block index."""
        self._pinged = False
        self._stop = "end_turn"

    def prompt(self, usage: Usage | None) -> None:
        """The upstream's own prompt counts, when it reported them before :meth:`start` (else the estimate stays)."""
        if usage is not None and usage.prompt_tokens > 0:
            self._cached = min(usage.cached_tokens, usage.prompt_tokens)
            self._input_tokens = usage.prompt_tokens - self._cached

    def start(self) -> bytes:
        return sse_event({"type": "message_start", "message": {
            "id": self._id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": anthropic_usage(self._input_tokens + self._cached, 0, self._cached)}})

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        choice = _first_choice(chunk)
        delta = as_object(choice.get("delta"))
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            if self._kind != "text":
                self._open(out, {"type": "text", "text": ""})
            out.append(self._delta(self._block, {"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            k = call.get("index", 0)
            if k not in self._tools:
                self._open(out, {"type": "tool_use", "id": call.get("id") or f"toolu_{self._id}_{k}",
                                 "name": fn.get("name") or "", "input": {}})
                self._tools[k] = self._block
            if fn.get("arguments"):
                out.append(self._delta(self._tools[k], {"type": "input_json_delta", "partial_json": fn["arguments"]}))
        if choice.get("finish_reason"):
            self._stop = FINISH_TO_STOP.get(choice["finish_reason"], "end_turn")
        return b"".join(out)

    def finish(self, completion_tokens: int) -> bytes:
        """The closing events: ``message_delta`` repeats ``message_start``'s input figure (see the module)."""
        out: list[bytes] = []
        self._close(out)
        usage = anthropic_usage(self._input_tokens + self._cached, completion_tokens, self._cached)
        out.append(sse_event({"type": "message_delta", "delta": {"stop_reason": self._stop, "stop_sequence": None},
                              "usage": usage}))
        out.append(sse_event({"type": "message_stop"}))
        return b"".join(out)

    def error(self, status: int, message: str) -> bytes:
        return sse_event(error_body(status, message))

    def _open(self, out: list[bytes], block: dict[str, Any]) -> None:
        self._close(out)
        self._block += 1
        self._kind = block["type"]
        out.append(sse_event({"type": "content_block_start", "index": self._block, "content_block": block}))
        if not self._pinged:
            self._pinged = True
            out.append(sse_event({"type": "ping"}))

    def _close(self, out: list[bytes]) -> None:
        if self._kind is not None:
            out.append(sse_event({"type": "content_block_stop", "index": self._block}))
            self._kind = None

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> bytes:
        return sse_event({"type": "content_block_delta", "index": index, "delta": delta})
