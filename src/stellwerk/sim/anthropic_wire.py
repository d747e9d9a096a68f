"""The Anthropic Messages wire format: request parsing, message bodies and the SSE event stream, as bytes.

Pure translation, no I/O and no behaviour. Requests need ``model``, ``messages``,
``max_tokens`` and the ``anthropic-version`` header; ``x-api-key`` (or ``Authorization:
Bearer``) carries the key.
A streamed message is a sequence of named SSE events::

    event: message_start        {"type":"message_start","message":{..."content":[],"stop_reason":null,"usage":{...}}}
    event: content_block_start  {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
    event: ping                 {"type":"ping"}
    event: content_block_delta  {..."delta":{"type":"text_delta","text":"word"}}            (repeated)
    event: content_block_stop   {"type":"content_block_stop","index":0}
    event: message_delta        {..."delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":N}}
    event: message_stop         {"type":"message_stop"}

A tool call is a ``tool_use`` block whose input streams as ``input_json_delta`` fragments
(``stop_reason: "tool_use"``); the content-policy trigger gets no block and ``stop_reason: "refusal"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final

import orjson

from stellwerk.http.server import Request, Response
from stellwerk.sim.anthropic_errors import AnthropicErrors, error_body, invalid_request, stream_error_event
from stellwerk.sim.content import estimate_tokens
from stellwerk.sim.protocol import (
    ChatRequest,
    Finish,
    Framing,
    Route,
    RouteSpec,
    StreamPlan,
    Turn,
    WireError,
    asked_words,
    bearer_token,
    ends_with_tool_result,
    is_count,
    load_object,
    required_string,
    resume_words,
    rfc3339,
    scan_text,
    stream_deltas,
    with_json,
)

__all__ = ["AnthropicDialect", "MessageWriter", "message_body", "parse_messages"]

_STOP: Final[dict[Finish, str]] = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use", "blocked": "refusal"}
_NOT_JSON: Final = partial(invalid_request, "There was an error parsing the body of your request as JSON.")
_NO_MODEL: Final = partial(invalid_request, "model: Field required")
_USAGE_EXTRA: Final = b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0'


# -- requests -------------------------------------------------------------------------------------------------------
def parse_messages(body: bytes, trigger: str = "", *, count_only: bool = False) -> ChatRequest:
    """Validate (minimally) and summarise a ``POST /v1/messages`` body; raises :class:`WireError`.

    ``count_only`` (``/v1/messages/count_tokens``) does not require ``max_tokens``.
    """
    data = load_object(body, _NOT_JSON)
    model = required_string(data, "model", _NO_MODEL)
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise invalid_request("messages: Field required" if messages is None else "messages: Input should be a valid list")
    if not messages:
        raise invalid_request("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise invalid_request(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    max_tokens = data.get("max_tokens")
    if max_tokens is None and not count_only:
        raise invalid_request("max_tokens: Field required")
    if max_tokens is not None and not is_count(max_tokens):
        raise invalid_request("max_tokens: Input should be greater than or equal to 1")
    system = data.get("system")
    contents = [system, *(m.get("content") for m in messages)]
    chars, flagged = scan_text(contents, trigger.lower())
    answered = ends_with_tool_result(messages, "content", lambda b: b.get("type") == "tool_result")
    tool_name, tool_parameters = (None, None) if answered else _pick_tool(data)  # a tool result: answer in text
    config = data.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    chat = ChatRequest(
        model, data.get("stream") is True, False, max_tokens, estimate_tokens(chars), flagged, tool_name,
        tool_parameters, "json_schema" if schema is not None else "text", schema, resume_words(messages),
        words=asked_words(system),
    )  # fmt: skip
    return with_json(chat, system, contents)


def _pick_tool(data: dict[str, Any]) -> tuple[str | None, Any]:
    tools = data.get("tools")
    if not tools:
        return None, None
    if not isinstance(tools, list):
        raise invalid_request("tools: Input should be a valid list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise invalid_request(f"tools.{i}.name: Field required")
    choice = data.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else "auto"
    if kind == "none":
        return None, None
    if kind == "tool":
        assert isinstance(choice, dict)
        name = choice.get("name")
        for tool in tools:
            if tool["name"] == name:
                return name, tool.get("input_schema")
        raise invalid_request(f"tool_choice: Tool '{name}' not found in tools")
    return tools[0]["name"], tools[0].get("input_schema")


# -- responses ------------------------------------------------------------------------------------------------------
def message_id(seq: int) -> str:
    return f"msg_sim{seq:020d}"


def tool_use_id(seq: int) -> str:
    return f"toolu_sim{seq:020d}"


def _usage(input_tokens: int, output_tokens: int) -> bytes:
    return b'{"input_tokens":%d,%s,"output_tokens":%d,"service_tier":"standard"}' % (
        input_tokens,
        _USAGE_EXTRA,
        output_tokens,
    )


def message_body(turn: Turn) -> bytes:
    """The ``message`` object answering a non-streamed request."""
    reply = turn.reply
    content: list[dict[str, Any]] = []
    if reply.tool is not None:
        tool_input = orjson.Fragment(reply.tool.arguments)
        content.append({"type": "tool_use", "id": tool_use_id(turn.seq), "name": reply.tool.name, "input": tool_input})
    elif reply.text is not None:
        content.append({"type": "text", "text": reply.text})
    return _message(turn, content, _STOP[reply.finish], reply.completion_tokens)


def _message(turn: Turn, content: list[dict[str, Any]], stop_reason: str | None, output_tokens: int) -> bytes:
    message = {
        "id": message_id(turn.seq),
        "type": "message",
        "role": "assistant",
        "model": turn.chat.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
    }
    return orjson.dumps(message)[:-1] + b',"usage":' + _usage(turn.chat.prompt_tokens, output_tokens) + b"}"


def _event(name: bytes, data: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


class MessageWriter(Framing):
    """Frames the events of one streamed message; deltas go into ``content_block_delta`` events of block 0."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":', b"}\n\n")

    def broken(self) -> bytes:
        event = self.event(b'{"type":"text_delta","text":"sim"}')
        return event[: len(event) // 2] + b"\n\n"

    def error(self, status: int) -> bytes:
        return stream_error_event(status)

    @staticmethod
    def start(turn: Turn) -> bytes:
        """``message_start``, the first block's ``content_block_start`` (if any) and a ``ping``."""
        reply = turn.reply
        out = _event(b"message_start", b'{"type":"message_start","message":%s}' % _message(turn, [], None, 1))
        block: dict[str, Any] | None = {"type": "text", "text": ""}
        if reply.tool is not None:
            block = {"type": "tool_use", "id": tool_use_id(turn.seq), "name": reply.tool.name, "input": {}}
        elif reply.text is None:
            block = None
        if block is not None:
            start = {"type": "content_block_start", "index": 0, "content_block": block}
            out += _event(b"content_block_start", orjson.dumps(start))
        return out + _event(b"ping", b'{"type": "ping"}')

    @staticmethod
    def finish(turn: Turn) -> list[bytes]:
        """``content_block_stop`` (if a block was open), ``message_delta`` and ``message_stop``."""
        reply = turn.reply
        out = []
        if reply.tool is not None or reply.text is not None:
            out.append(_event(b"content_block_stop", b'{"type":"content_block_stop","index":0}'))
        delta = b'{"type":"message_delta","delta":{"stop_reason":"%s","stop_sequence":null},"usage":{"output_tokens":%d}}'
        out.append(_event(b"message_delta", delta % (_STOP[reply.finish].encode(), reply.completion_tokens)))
        out.append(_event(b"message_stop", b'{"type":"message_stop"}'))
        return out


def text_delta(text: str) -> bytes:
    return b'{"type":"text_delta","text":' + orjson.dumps(text) + b"}"


def input_json_delta(fragment: str) -> bytes:
    return b'{"type":"input_json_delta","partial_json":' + orjson.dumps(fragment) + b"}"


# -- the dialect ------------------------------------------------------------------------------------------------------


class AnthropicDialect:
    """Anthropic: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``, ``GET /v1/models``.

    Auth: ``x-api-key`` (or ``Authorization: Bearer``, as recent SDKs send it); every request also needs an
    ``anthropic-version`` header (else 400).
    """

    __slots__ = ()
    name: Final = "anthropic"
    base_path: Final = ""
    errors: Final = AnthropicErrors()
    routes: Final = (
        RouteSpec("POST", "/v1/messages", Route("chat")),
        RouteSpec("POST", "/v1/messages/count_tokens", Route("info", variant="count_tokens")),
        RouteSpec("GET", "/v1/models", Route("info")),
    )

    def authorize(self, req: Request, api_key: str | None) -> Response | None:
        if api_key is not None:
            supplied = req.headers.get("x-api-key")
            if supplied is None:
                supplied = bearer_token(req)
            if supplied is None:
                return Response(401, error_body("authentication_error", "x-api-key header is required"))
            if supplied != api_key:
                return Response(401, error_body("authentication_error", "invalid x-api-key"))
        if "anthropic-version" not in req.headers:
            return Response(400, error_body("invalid_request_error", "anthropic-version: header is required"))
        return None

    def headers(self, seq: int) -> list[tuple[str, str]] | None:
        return [("request-id", f"req_sim{seq:024d}")]

    def parse_chat(self, req: Request, route: Route, trigger: str) -> ChatRequest:
        return parse_messages(req.body, trigger)

    def completion(self, turn: Turn) -> bytes:
        return message_body(turn)

    def text_delta(self, text: str) -> bytes:
        return text_delta(text)

    def stream(self, turn: Turn, text: Sequence[bytes]) -> StreamPlan:
        deltas = stream_deltas(turn, text, input_json_delta)
        return StreamPlan(MessageWriter(), MessageWriter.start(turn), deltas, MessageWriter.finish(turn))

    def info(self, req: Request, route: Route, models: Sequence[str], accept_any: bool, created: float) -> Response:
        if route.variant == "count_tokens":
            try:
                chat = parse_messages(req.body, count_only=True)
            except WireError as exc:
                return exc.response()
            return Response(200, b'{"input_tokens":%d}' % chat.prompt_tokens)
        stamp = rfc3339(created)
        data = [{"type": "model", "id": m, "display_name": m, "created_at": stamp} for m in models]
        return Response(200, orjson.dumps({"data": data, "has_more": False, "first_id": models[0], "last_id": models[-1]}))
