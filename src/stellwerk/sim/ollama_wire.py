"""The Ollama wire format: ``/api/chat`` request parsing and NDJSON response lines, as bytes.

Pure translation, no I/O and no behaviour. ``/api/chat`` streams unless the request
says ``"stream": false``; a stream is one JSON object per line, the last with
``done: true``, the stop reason and the counters (durations in nanoseconds)::

    {"model":"m","created_at":"...Z","message":{"role":"assistant","content":"word"},"done":false}   (repeated)
    {"model":"m","created_at":"...Z","message":{"role":"assistant","content":""},"done":true,
     "done_reason":"stop","total_duration":N,"load_duration":N,"prompt_eval_count":N,
     "prompt_eval_duration":N,"eval_count":N,"eval_duration":N}

A tool call is one message with ``tool_calls`` (``arguments`` an object);
``options.num_predict`` ends with ``done_reason: "length"``; ``format`` (``"json"`` or
a JSON schema) asks for JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final

import orjson

from stellwerk.http.server import Request, Response
from stellwerk.sim.content import estimate_tokens
from stellwerk.sim.ollama_errors import OllamaErrors, bad_request, error_body, stream_error_line
from stellwerk.sim.protocol import (
    MAX_DIMENSIONS,
    ChatRequest,
    EmbedRequest,
    Finish,
    Framing,
    Route,
    RouteSpec,
    StreamPlan,
    Turn,
    asked_words,
    bearer_token,
    is_count,
    load_object,
    plain_text,
    required_string,
    rfc3339,
    scan_text,
    with_json,
)

__all__ = ["LineWriter", "OllamaDialect", "chat_response", "parse_chat", "parse_embed"]

_DONE: Final[dict[Finish, str]] = {"stop": "stop", "length": "length", "tool": "stop", "blocked": "stop"}
_NOT_JSON: Final = partial(bad_request, "invalid character 'o' looking for beginning of value")
_NO_MODEL: Final = partial(bad_request, "model is required")
_LOAD_NS: Final = 1_000_000
"""Reported model load time: the model is always warm."""


# -- requests -------------------------------------------------------------------------------------------------------
def _model(data: dict[str, Any]) -> str:
    return required_string(data, "model", _NO_MODEL)


def parse_chat(body: bytes, trigger: str = "") -> ChatRequest:
    """Validate (minimally) and summarise a ``POST /api/chat`` body; raises :class:`WireError`."""
    data = load_object(body, _NOT_JSON)
    model = _model(data)
    messages = data.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise bad_request("json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message")
    chars, flagged = scan_text((m.get("content") for m in messages), trigger.lower())
    options = data.get("options")
    max_tokens = options.get("num_predict") if isinstance(options, dict) else None
    if not is_count(max_tokens):
        max_tokens = None  # -1 (and anything odd) means "until the model stops"
    fmt = data.get("format")
    response_format, schema = "text", None
    if isinstance(fmt, dict):
        response_format, schema = "json_schema", fmt
    elif fmt == "json":
        response_format = "json_object"
    tool_name, tool_parameters = None, None
    tools = data.get("tools")
    answered = bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
    if isinstance(tools, list) and tools and not answered:  # after a tool result the model answers in text
        fn = tools[0].get("function") if isinstance(tools[0], dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_request("json: cannot unmarshal tools into Go struct field ChatRequest.tools of type api.Tools")
        tool_name, tool_parameters = fn["name"], fn.get("parameters")
    system = " ".join(plain_text(m.get("content")) for m in messages if m.get("role") == "system")
    chat = ChatRequest(
        model, data.get("stream") is not False, False, max_tokens, estimate_tokens(chars), flagged, tool_name,
        tool_parameters, response_format, schema, words=asked_words(system),
    )  # fmt: skip
    return with_json(chat, system, (m.get("content") for m in messages))


def parse_embed(body: bytes) -> EmbedRequest:
    """Summarise a ``POST /api/embed`` body: ``input`` is a string or a list of strings."""
    data = load_object(body, _NOT_JSON)
    model = _model(data)
    raw = data.get("input")
    inputs = (raw,) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list) else None
    if not inputs or not all(isinstance(i, str) for i in inputs):
        raise bad_request("invalid input type")
    dimensions = data.get("dimensions")
    if dimensions is not None and not (is_count(dimensions) and dimensions <= MAX_DIMENSIONS):
        raise bad_request(f"dimensions must be an integer from 1 to {MAX_DIMENSIONS}")
    return EmbedRequest(model, inputs, False, dimensions, sum(estimate_tokens(len(i)) for i in inputs))


# -- responses ------------------------------------------------------------------------------------------------------
def _counters(turn: Turn) -> bytes:
    """``"done":true,...}`` closing the final object: stop reason, token counts and durations (ns)."""
    total = max(int(turn.duration * 1e9), 2 * _LOAD_NS)
    prompt_ns = max(int(turn.ttft * 1e9) - _LOAD_NS, _LOAD_NS // 2)
    eval_ns = max(total - _LOAD_NS - prompt_ns, 0)
    head = b'"done_reason":"%s","done":true,"total_duration":%d,"load_duration":%d,' % (
        _DONE[turn.reply.finish].encode(),
        total,
        _LOAD_NS,
    )
    counts = b'"prompt_eval_count":%d,"prompt_eval_duration":%d,"eval_count":%d,"eval_duration":%d}' % (
        turn.chat.prompt_tokens,
        prompt_ns,
        turn.reply.completion_tokens,
        eval_ns,
    )
    return head + counts


def _message(turn: Turn) -> bytes:
    reply = turn.reply
    if reply.tool is not None:
        call = b'{"function":{"name":%s,"arguments":%s}}' % (orjson.dumps(reply.tool.name), reply.tool.arguments.encode())
        return b'{"role":"assistant","content":"","tool_calls":[%s]}' % call
    return text_message(reply.text or "")


def text_message(text: str) -> bytes:
    return b'{"role":"assistant","content":' + orjson.dumps(text) + b"}"


def _head(turn: Turn) -> bytes:
    return b'{"model":%s,"created_at":"%s","message":' % (orjson.dumps(turn.chat.model), rfc3339(turn.created).encode())


def chat_response(turn: Turn) -> bytes:
    """The object answering a non-streamed ``/api/chat``."""
    return _head(turn) + _message(turn) + b"," + _counters(turn)


class LineWriter(Framing):
    """Frames the NDJSON lines of one stream; a delta is the ``message`` of one line."""

    __slots__ = ()

    def __init__(self, turn: Turn) -> None:
        super().__init__(_head(turn), b',"done":false}\n')

    def broken(self) -> bytes:
        return self._head + b'{"role":"assist\n'

    def error(self, status: int) -> bytes:
        return stream_error_line(status)


# -- the dialect ------------------------------------------------------------------------------------------------------


class OllamaDialect:
    """Ollama: ``POST /api/chat``, ``POST /api/embed``, ``GET /api/tags``.

    Auth: none unless the sim has a key, then ``Authorization: Bearer`` (as a hosted Ollama asks).
    """

    __slots__ = ()
    name: Final = "ollama"
    base_path: Final = ""
    errors: Final = OllamaErrors()
    routes: Final = (
        RouteSpec("POST", "/api/chat", Route("chat")),
        RouteSpec("POST", "/api/embed", Route("embed")),
        RouteSpec("GET", "/api/tags", Route("info")),
    )

    def authorize(self, req: Request, api_key: str | None) -> Response | None:
        if api_key is None:
            return None
        return None if bearer_token(req) == api_key else Response(401, error_body("unauthorized"))

    def headers(self, seq: int) -> list[tuple[str, str]] | None:
        return None

    def parse_chat(self, req: Request, route: Route, trigger: str) -> ChatRequest:
        return parse_chat(req.body, trigger)

    def parse_embed(self, req: Request, route: Route) -> EmbedRequest:
        return parse_embed(req.body)

    def completion(self, turn: Turn) -> bytes:
        return chat_response(turn)

    def text_delta(self, text: str) -> bytes:
        return text_message(text)

    def stream(self, turn: Turn, text: Sequence[bytes]) -> StreamPlan:
        writer = LineWriter(turn)
        deltas = [_message(turn)] if turn.reply.tool is not None else text
        closing = [_head(turn) + text_message("") + b"," + _counters(turn) + b"\n"]
        return StreamPlan(writer, b"", deltas, closing, "application/x-ndjson")

    def embeddings(self, emb: EmbedRequest, route: Route, vectors: list[list[float]], duration: float) -> bytes:
        total = max(int(duration * 1e9), 2 * _LOAD_NS)
        head = orjson.dumps({"model": emb.model, "embeddings": vectors})
        return head[:-1] + b',"total_duration":%d,"load_duration":%d,"prompt_eval_count":%d}' % (
            total,
            _LOAD_NS,
            emb.prompt_tokens,
        )

    def info(self, req: Request, route: Route, models: Sequence[str], accept_any: bool, created: float) -> Response:
        stamp = rfc3339(created)
        details = {
            "parent_model": "",
            "format": "gguf",
            "family": "sim",
            "families": ["sim"],
            "parameter_size": "1B",
            "quantization_level": "Q4_0",
        }
        tags = [{"name": m, "model": m, "modified_at": stamp, "size": 0, "digest": "0" * 64, "details": details} for m in models]
        return Response(200, orjson.dumps({"models": tags}))
