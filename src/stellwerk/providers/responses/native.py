"""Responses requests forwarded unchanged to openai and azure deployments that set ``native_responses: true``.

The request goes to the upstream's own ``/responses`` (the model replaced by the deployment's), and its answer
comes back to the client as the upstream wrote it: the ``response`` object, or its event stream. The router
works on chat shapes, so for its accounting (usage, cost, the answer's text, when it has finished) each
upstream event is also read as the equivalent ``chat.completion.chunk``, which carries the event itself under
``NATIVE``; the front door forwards that and ignores the rest.

==========================================  =========================================================
upstream event                              chunk the router reads
==========================================  =========================================================
``response.created``, ``.in_progress``      held back until the next event, so that a response that
                                            fails at once (``response.failed``) is failed over
``response.output_text.delta``              ``delta.content``
``response.output_item.added`` (function)   ``delta.tool_calls`` (such a stream is never resumed)
``response.completed`` / ``.incomplete``    ``finish_reason`` and ``usage``; the stream's end
``response.failed``, ``error``              an UpstreamError: failed over before anything was
                                            forwarded, an error event after
anything else                               no choices (forwarded, nothing to account)
==========================================  =========================================================
"""

from __future__ import annotations

from typing import Any

import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk, Endpoint, UpstreamRequest
from stellwerk.providers.shapes import parse_object
from stellwerk.providers.sse import SSEParser
from stellwerk.usage import Usage

__all__ = ["NATIVE", "NativeRelay", "ResponsesStreamDecoder", "native_usage", "read_response", "responses_request",
           "responses_url", "stored_message"]

NATIVE = "stellwerk_native"
"""The key under which a chunk read from a native stream carries the upstream's event, as it came."""

_FINISH = {"completed": "stop", "incomplete": "length"}


def responses_url(endpoint: Endpoint) -> str:
    """``/responses`` next to the chat URL; Azure's is the resource's, with the deployment's ``api-version``."""
    url = endpoint.chat_url
    if "/openai/deployments/" in url:
        root, _, rest = url.partition("/openai/deployments/")
        query = rest.partition("?")[2]
        return f"{root}/openai/responses" + (f"?{query}" if query else "")
    return url.replace("/chat/completions", "/responses", 1)


def responses_request(deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any],
                      stream: bool) -> UpstreamRequest:
    """The client's Responses request, for this deployment's model."""
    wire = {**body, "model": deployment.model}
    if stream:
        wire["stream"] = True
    else:
        wire.pop("stream", None)
        wire.pop("stream_options", None)
    return UpstreamRequest("POST", responses_url(endpoint), endpoint.sse_headers if stream else endpoint.json_headers,
                           orjson.dumps(wire))


def native_usage(usage: Any) -> Usage | None:
    """A Responses ``usage`` (input, output, cached) as the router counts it."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(prompt, completion, cached if isinstance(cached, int) else 0)


def _chat_usage(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens}}


def _failed(data: Any, what: str) -> UpstreamError:
    """``data``: a failed response (its ``error`` names the reason) or an ``error`` event (it is the reason)."""
    error = data.get("error", data) if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return UpstreamError(Outcome.RETRY_HERE, f"upstream {what}: {message or 'no reason given'}", reason="http")


def read_response(raw: bytes) -> dict[str, Any]:
    """A complete upstream answer: a ``response`` object (a failed one, or any other shape, raises)."""
    data = parse_object(raw)
    if data.get("object") != "response" or not isinstance(data.get("output"), list):
        raise UpstreamError(Outcome.RETRY_HERE, "upstream answer is not a response object", reason="malformed")
    if data.get("status") == "failed":
        raise _failed(data, "response failed")
    return data


def stored_message(response: dict[str, Any]) -> dict[str, Any]:
    """The assistant chat message a response's output amounts to (what ``previous_response_id`` continues)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.extend(str(part.get("text") or "") for part in item.get("content") or ()
                         if isinstance(part, dict) and part.get("type") == "output_text")
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


class ResponsesStreamDecoder:
    """An upstream's Responses event stream → chunks the router reads, each carrying its event (module docstring)."""

    __slots__ = ("_calls", "_held", "_identity", "_sse", "done")

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._held: list[dict[str, Any]] = []
        self._identity: dict[str, Any] = {"object": "chat.completion.chunk"}
        self._calls = 0
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        chunks: list[Chunk] = []
        for _, payload in self._sse.feed(data):
            if not payload or self.done:
                continue
            event = parse_object(payload, "stream event")
            kind = event.get("type")
            if kind in ("response.failed", "error"):
                raise _failed(event.get("response") if kind == "response.failed" else event, "stream failed")
            response = event.get("response")
            if isinstance(response, dict):
                self._identity = {"id": response.get("id"), "object": "chat.completion.chunk",
                                  "created": response.get("created_at"), "model": response.get("model")}
            if kind in ("response.created", "response.in_progress"):
                self._held.append(event)
                continue
            for held in self._held:
                chunks.append(self._chunk(held, []))
            self._held.clear()
            chunks.append(self._read(str(kind), event))
        return chunks

    def _chunk(self, event: dict[str, Any], choices: list[dict[str, Any]], **extra: Any) -> Chunk:
        return {**self._identity, "choices": choices, **extra, NATIVE: event}, None

    def _read(self, kind: str, event: dict[str, Any]) -> Chunk:
        if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
            return self._chunk(event, [{"index": 0, "delta": {"content": event["delta"]}}])
        item = event.get("item")
        if kind == "response.output_item.added" and isinstance(item, dict) and item.get("type") == "function_call":
            call = {"index": self._calls, "id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": ""}}
            self._calls += 1
            return self._chunk(event, [{"index": 0, "delta": {"tool_calls": [call]}}])
        response = event.get("response")
        if kind in ("response.completed", "response.incomplete") and isinstance(response, dict):
            self.done = True
            finish = "tool_calls" if self._calls and kind == "response.completed" else _FINISH[kind[9:]]
            usage = native_usage(response.get("usage"))
            extra = {"usage": _chat_usage(usage)} if usage is not None else {}
            return self._chunk(event, [{"index": 0, "delta": {}, "finish_reason": finish}], **extra)
        return self._chunk(event, [])


class NativeRelay:
    """The client's side of a native stream: each upstream event written out as it came (re-encoded), the latest
    response object kept (the completed one is stored for ``previous_response_id``), and the closing events of a
    stream that broke off numbered on from the upstream's."""

    __slots__ = ("_seq", "response")

    def __init__(self) -> None:
        self.response: dict[str, Any] | None = None
        self._seq = 0

    def relay(self, event: dict[str, Any]) -> bytes:
        seq = event.get("sequence_number")
        if isinstance(seq, int):
            self._seq = seq + 1
        if isinstance(event.get("response"), dict):
            self.response = event["response"]
        return self._sse(event)

    def error(self, message: str) -> bytes:
        failed = {**(self.response or {}), "status": "failed", "error": {"code": "server_error", "message": message}}
        return (self._sse({"type": "error", "sequence_number": self._seq, "code": "stream_interrupted",
                           "message": message, "param": None})
                + self._sse({"type": "response.failed", "sequence_number": self._seq + 1, "response": failed}))

    @staticmethod
    def _sse(event: dict[str, Any]) -> bytes:
        return b"event: %s\ndata: %s\n\n" % (str(event.get("type")).encode(), orjson.dumps(event))
