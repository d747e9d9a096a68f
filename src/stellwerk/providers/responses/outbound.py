"""Chat answers → Responses API answers: a ``response`` object, or its stream of typed events.

A chat message becomes output items: a ``message`` item (one ``output_text`` part) when it has
text, then one ``function_call`` item per tool call. ``finish_reason`` ``length`` makes the
response ``incomplete`` (``max_output_tokens``), ``content_filter`` too (``content_filter``).

The stream follows the Responses event sequence, each event with its ``sequence_number``::

    response.created, response.in_progress
    response.output_item.added (message), response.content_part.added, response.output_text.delta*,
    response.output_item.added (function_call), response.function_call_arguments.delta*
    ... response.output_text.done, response.content_part.done, response.function_call_arguments.done,
    response.output_item.done (each item), then response.completed (or response.incomplete)

A stream that breaks off ends with an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["ResponseEvents", "skeleton", "to_response", "usage_of"]


def skeleton(response_id: str, created: int, model: str, echo: dict[str, Any], store: bool,
             previous: str | None) -> dict[str, Any]:
    """A response object without output, status and usage (what every event and the answer share)."""
    return {
        "id": response_id, "object": "response", "created_at": created, "status": "in_progress", "model": model,
        "output": [], "error": None, "incomplete_details": None,
        "instructions": echo.get("instructions"), "tools": echo.get("tools") or [],
        "tool_choice": echo.get("tool_choice") or "auto",
        "text": echo.get("text") or {"format": {"type": "text"}},
        "temperature": echo.get("temperature"), "top_p": echo.get("top_p"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "reasoning": echo.get("reasoning") or {"effort": None, "summary": None},
        "parallel_tool_calls": echo.get("parallel_tool_calls") is not False,
        "metadata": echo.get("metadata") or {}, "store": store, "truncation": "disabled",
        "previous_response_id": previous, "usage": None,
    }


def usage_of(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": int(cached)},
            "output_tokens_details": {"reasoning_tokens": 0}}


def _status(finish: Any) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def to_response(data: dict[str, Any], base: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``chat.completion`` → ``(response object, the assistant chat message to store)``."""
    choices = data.get("choices") or [{}]
    choice: dict[str, Any] = choices[0] if isinstance(choices[0], dict) else {}
    found = choice.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(_message_item(f"msg_{base['id'][5:]}", text))
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict) and isinstance(c.get("function"), dict)]
    for k, call in enumerate(calls):
        fn = call["function"]
        output.append(_call_item(f"fc_{base['id'][5:]}_{k}", str(call.get("id") or f"call_{k}"), str(fn.get("name")),
                                 str(fn.get("arguments") or "")))
    status, incomplete = _status(choice.get("finish_reason"))
    response = {**base, "status": status, "incomplete_details": incomplete, "output": output,
                "usage": usage_of(data.get("usage"))}
    stored: dict[str, Any] = {"role": "assistant", "content": text if isinstance(text, str) and text else None}
    if calls:
        stored["tool_calls"] = calls
    return response, stored


class ResponseEvents:
    """Feeds on ``chat.completion.chunk`` dicts; gives the Responses API's SSE events as bytes."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self._seq = 0
        self._suffix = base["id"][5:]
        self._text: list[str] | None = None
        self._text_index = -1
        self._calls: dict[int, dict[str, Any]] = {}
        """By the chat chunk's tool-call index: item id, call id, name, arguments so far, output index."""
        self._items = 0
        self._finish: Any = None
        self._usage: Any = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps(data))

    def start(self) -> bytes:
        return self._event("response.created", response=self.base) + self._event("response.in_progress",
                                                                                 response=self.base)

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.append(self._text_delta(text))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out.append(self._call_delta(call))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _text_delta(self, text: str) -> bytes:
        head = b""
        item_id = f"msg_{self._suffix}"
        if self._text is None:
            self._text, self._text_index = [], self._items
            self._items += 1
            head = self._event("response.output_item.added", output_index=self._text_index,
                               item=_message_item(item_id, "", "in_progress"))
            head += self._event("response.content_part.added", item_id=item_id, output_index=self._text_index,
                                content_index=0, part={"type": "output_text", "text": "", "annotations": []})
        self._text.append(text)
        return head + self._event("response.output_text.delta", item_id=item_id, output_index=self._text_index,
                                  content_index=0, delta=text, logprobs=[])

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        index = call.get("index", 0)
        fn = call.get("function") or {}
        state = self._calls.get(index)
        head = b""
        if state is None:
            state = self._calls[index] = {"id": f"fc_{self._suffix}_{index}", "call_id": call.get("id") or f"call_{index}",
                                          "name": fn.get("name") or "", "arguments": [], "output": self._items}
            self._items += 1
            head = self._event("response.output_item.added", output_index=state["output"],
                               item=_call_item(state["id"], state["call_id"], state["name"], "", "in_progress"))
        piece = fn.get("arguments")
        if not isinstance(piece, str) or not piece:
            return head
        state["arguments"].append(piece)
        return head + self._event("response.function_call_arguments.delta", item_id=state["id"],
                                  output_index=state["output"], delta=piece)

    def finish(self) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
        """The closing events, the final response object and the assistant chat message to store."""
        out: list[bytes] = []
        items: list[tuple[int, dict[str, Any]]] = []
        text = "".join(self._text) if self._text is not None else None
        if text is not None:
            item_id, index = f"msg_{self._suffix}", self._text_index
            part = {"type": "output_text", "text": text, "annotations": []}
            out.append(self._event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                                   text=text, logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=item_id, output_index=index,
                                   content_index=0, part=part))
            item = _message_item(item_id, text)
            out.append(self._event("response.output_item.done", output_index=index, item=item))
            items.append((index, item))
        calls = []
        for state in self._calls.values():
            arguments = "".join(state["arguments"])
            out.append(self._event("response.function_call_arguments.done", item_id=state["id"],
                                   output_index=state["output"], arguments=arguments))
            item = _call_item(state["id"], state["call_id"], state["name"], arguments)
            out.append(self._event("response.output_item.done", output_index=state["output"], item=item))
            items.append((state["output"], item))
            calls.append({"id": state["call_id"], "type": "function",
                          "function": {"name": state["name"], "arguments": arguments}})
        status, incomplete = _status(self._finish)
        response = {**self.base, "status": status, "incomplete_details": incomplete,
                    "output": [item for _, item in sorted(items, key=lambda pair: pair[0])],
                    "usage": usage_of(self._usage)}
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(kind, response=response))
        stored: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            stored["tool_calls"] = calls
        return b"".join(out), response, stored

    def error(self, message: str) -> bytes:
        failed = {**self.base, "status": "failed", "error": {"code": "server_error", "message": message}}
        return (self._event("error", code="stream_interrupted", message=message, param=None)
                + self._event("response.failed", response=failed))
