"""The OpenAI wire format: request parsing and response/chunk/error bodies, as bytes.

Pure translation, no I/O and no behaviour. Shapes follow the OpenAI API
reference (Chat Completions, Embeddings, Models) and the error bodies the real
service sends: ``{"error": {"message", "type", "param", "code"}}``.

A streamed chat completion is a sequence of SSE events::

    data: {..."choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},...}]}
    data: {..."choices":[{"index":0,"delta":{"content":"word"},...}]}          (repeated)
    data: {..."choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}
    data: {..."choices":[],"usage":{...}}                                       (if include_usage)
    data: [DONE]

With ``stream_options.include_usage`` every chunk carries ``"usage":null`` until the last.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from functools import partial
from typing import Any, Final

import orjson

from stellwerk.http.server import Request, Response
from stellwerk.sim.content import estimate_tokens
from stellwerk.sim.openai_errors import OpenAIErrors, WireError, invalid_api_key, stream_error_event
from stellwerk.sim.openai_responses import chat_body, response_body, response_stream
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
    resume_words,
    scan_text,
    stream_deltas,
    with_json,
)

__all__ = [
    "DONE",
    "ChatRequest",
    "ChunkWriter",
    "EmbeddingsRequest",
    "OpenAIDialect",
    "chat_completion",
    "content_delta",
    "embeddings_response",
    "model_list",
    "model_object",
    "parse_chat",
    "parse_embeddings",
    "tool_arguments_delta",
    "tool_call_id",
]

DONE: Final = b"data: [DONE]\n\n"
FINGERPRINT: Final = "fp_sim"
_OWNED_BY: Final = "stellwerk-sim"

_USAGE_DETAILS: Final = (
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}'
)
_NOT_JSON: Final = partial(
    WireError,
    400,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    "invalid_request_error",
)
_NO_MODEL: Final = partial(WireError, 400, "you must provide a model parameter", "invalid_request_error")

EmbeddingsRequest = EmbedRequest


def _invalid(message: str, param: str | None = None, code: str | None = None) -> WireError:
    return WireError(400, message, "invalid_request_error", param, code)


# -- requests -----------------------------------------------------------------------------------------------------
def _model(data: dict[str, Any]) -> str:
    return required_string(data, "model", _NO_MODEL)


def parse_chat(body: bytes, trigger: str = "") -> ChatRequest:
    """Validate (minimally) and summarise a ``POST /v1/chat/completions`` body; raises :class:`WireError`."""
    data = load_object(body, _NOT_JSON)
    model = _model(data)
    messages = data.get("messages")
    if messages is None:
        raise _invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _invalid(
            f"Invalid type for 'messages': expected an array, but got {type(messages).__name__} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise _invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _invalid(f"Invalid value for 'messages[{i}]': expected an object with a 'role'.", f"messages[{i}]")
    chars, flagged = scan_text((m.get("content") for m in messages), trigger.lower())
    stream = data.get("stream") is True
    options = data.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    max_tokens = _max_tokens(data)
    tool_name, tool_parameters = (None, None) if _tool_answered(messages) else _pick_tool(data)
    response_format, schema = _response_format(data.get("response_format"))
    n = data.get("n", 1)
    if not is_count(n) or n > 128:
        raise _invalid("Invalid 'n': expected an integer from 1 to 128.", "n")
    system = " ".join(plain_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    chat = ChatRequest(
        model, stream, include_usage, max_tokens, estimate_tokens(chars), flagged, tool_name, tool_parameters,
        response_format, schema, resume_words(messages), n, asked_words(system),
    )  # fmt: skip
    return with_json(chat, system, (m.get("content") for m in messages))


def _max_tokens(data: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(f"Invalid type for '{key}': expected an integer.", key, "invalid_type")
        if value < 1:
            raise _invalid(
                f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
                key,
                "integer_below_min_value",
            )
        return value
    return None


def _tool_answered(messages: list[Any]) -> bool:
    """The conversation ends with a tool result: the model answers it in text (agent loops end)."""
    return bool(messages[-1].get("role") == "tool")


def _pick_tool(data: dict[str, Any]) -> tuple[str | None, Any]:
    tools = data.get("tools")
    if not tools:
        return None, None
    if not isinstance(tools, list):
        raise _invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _invalid(f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function")
        functions.append(fn)
    choice = data.get("tool_choice", "auto")
    if choice == "none":
        return None, None
    if isinstance(choice, dict):
        forced = choice.get("function")
        name = forced.get("name") if isinstance(forced, dict) else None
        for fn in functions:
            if fn["name"] == name:
                return name, fn.get("parameters")
        raise _invalid(f"Invalid value for 'tool_choice': no function named {name!r} in 'tools'.", "tool_choice")
    return functions[0]["name"], functions[0].get("parameters")


def _response_format(value: object) -> tuple[str, Any]:
    if not isinstance(value, dict):
        return "text", None
    kind = value.get("type")
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = value.get("json_schema")
        return "json_schema", spec.get("schema") if isinstance(spec, dict) else None
    return "text", None


def parse_embeddings(body: bytes) -> EmbeddingsRequest:
    """Validate a ``POST /v1/embeddings`` body: ``input`` is a string, strings, a token array or token arrays."""
    data = load_object(body, _NOT_JSON)
    model = _model(data)
    raw = data.get("input")
    if raw is None:
        raise _invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    items: list[str | tuple[int, ...]]
    if isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        items = [tuple(raw)]
    elif isinstance(raw, list) and raw:
        items = []
        for item in raw:
            if isinstance(item, str):
                items.append(item)
            elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
                items.append(tuple(item))
            else:
                raise _invalid("'$.input' is invalid. Please check the API reference.", "input")
    else:
        raise _invalid("'$.input' is invalid. Please check the API reference.", "input")
    encoding = data.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise _invalid(f"Invalid value for 'encoding_format': {encoding!r}.", "encoding_format")
    dimensions = data.get("dimensions")
    if dimensions is not None and not (is_count(dimensions) and dimensions <= MAX_DIMENSIONS):
        raise _invalid(f"Invalid 'dimensions': expected an integer from 1 to {MAX_DIMENSIONS}.", "dimensions")
    tokens = sum(estimate_tokens(len(i)) if isinstance(i, str) else len(i) for i in items)
    return EmbedRequest(model, tuple(items), encoding == "base64", dimensions, tokens)


# -- responses ----------------------------------------------------------------------------------------------------
def tool_call_id(n: int) -> str:
    return f"call_sim{n:020d}"


def _usage(prompt: int, completion: int) -> bytes:
    return b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,%s}' % (
        prompt,
        completion,
        prompt + completion,
        _USAGE_DETAILS,
    )


def _n_choices(body: bytes, n: int) -> bytes:
    """``n`` choices (the same answer n times, each with its index), usage counting every one."""
    data = orjson.loads(body)
    choice = data["choices"][0]
    data["choices"] = [{**choice, "index": i} for i in range(n)]
    usage = data.get("usage")
    if isinstance(usage, dict):
        usage["completion_tokens"] *= n
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return orjson.dumps(data)


def chat_completion(
    completion_id: str,
    created: int,
    model: str,
    content: str | None,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    tool_call: tuple[str, str, str] | None = None,
) -> bytes:
    """A ``chat.completion`` body. ``tool_call`` is ``(id, name, arguments)``."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_call is not None:
        call_id, name, arguments = tool_call
        function = {"name": name, "arguments": arguments}
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
    message["refusal"] = None
    message["annotations"] = []
    head = orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        }
    )
    return b'%s,"usage":%s,"service_tier":"default","system_fingerprint":"%s"}' % (
        head[:-1],
        _usage(prompt_tokens, completion_tokens),
        FINGERPRINT.encode(),
    )


def content_delta(text: str) -> bytes:
    return b'{"content":' + orjson.dumps(text) + b"}"


def tool_arguments_delta(fragment: str) -> bytes:
    return b'{"tool_calls":[{"index":0,"function":{"arguments":' + orjson.dumps(fragment) + b"}}]}"


class ChunkWriter(Framing):
    """Builds the SSE events of one streamed chat completion (same id/created/model on every chunk)."""

    __slots__ = ("_usage_head", "_usage_null")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool, index: int = 0) -> None:
        common = b'{"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,' % (
            completion_id.encode(),
            created,
            orjson.dumps(model),
        )
        common += b'"service_tier":"default","system_fingerprint":"%s",' % FINGERPRINT.encode()
        self._usage_null = b',"usage":null' if include_usage else b""
        tail = b',"logprobs":null,"finish_reason":null}]' + self._usage_null + b"}\n\n"
        self._head = b"data: " + common + b'"choices":[{"index":%d,"delta":' % index  # Framing's fields, no call
        self._tail = tail
        self._usage_head = b"data: " + common + b'"choices":[],"usage":'

    def role(self) -> bytes:
        return self.event(b'{"role":"assistant","content":"","refusal":null}')

    def content(self, text: str) -> bytes:
        return self.event(content_delta(text))

    def tool_start(self, call_id: str, name: str) -> bytes:
        call = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return self.event(b'{"role":"assistant","content":null,"tool_calls":[%s],"refusal":null}' % orjson.dumps(call))

    def tool_arguments(self, fragment: str) -> bytes:
        return self.event(tool_arguments_delta(fragment))

    def finish(self, reason: str) -> bytes:
        return self._head + b'{},"logprobs":null,"finish_reason":"%s"}]%s}\n\n' % (reason.encode(), self._usage_null)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return self._usage_head + _usage(prompt_tokens, completion_tokens) + b"}\n\n"

    def broken(self) -> bytes:
        """An event whose data is cut-off JSON (for the malformed outcome)."""
        event = self.event(b'{"content":"sim"}')
        return event[: len(event) // 2] + b"\n\n"

    def error(self, status: int) -> bytes:
        return stream_error_event(status)


class ChoicesWriter:
    """The events of a stream with ``n`` > 1 choices: every delta once per choice index, as OpenAI interleaves
    them (the sim's choices are the same answer)."""

    __slots__ = ("writers",)

    def __init__(self, writers: Sequence[ChunkWriter]) -> None:
        self.writers = writers

    def event(self, delta: bytes) -> bytes:
        return b"".join(w.event(delta) for w in self.writers)

    def events(self, deltas: Sequence[bytes]) -> bytes:
        return b"".join(self.event(d) for d in deltas)

    def broken(self) -> bytes:
        return self.writers[0].broken()

    def error(self, status: int) -> bytes:
        return stream_error_event(status)


def embeddings_response(model: str, vectors: Sequence[Sequence[float]], as_base64: bool, prompt_tokens: int) -> bytes:
    data: list[dict[str, Any]] = []
    for i, vector in enumerate(vectors):
        value: object = vector
        if as_base64:
            value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": value})
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def model_object(model: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": _OWNED_BY}


def model_list(models: Sequence[str], created: int) -> bytes:
    return orjson.dumps({"object": "list", "data": [model_object(m, created) for m in models]})


# -- the dialect --------------------------------------------------------------------------------------------------
_FINISH: Final[dict[Finish, str]] = {"stop": "stop", "length": "length", "tool": "tool_calls", "blocked": "content_filter"}


class OpenAIDialect:
    """OpenAI: ``POST /v1/chat/completions``, ``POST /v1/responses`` (:mod:`.openai_responses`),
    ``POST /v1/embeddings``, ``GET /v1/models[/{id}]`` (``/v1`` optional).

    Auth: ``Authorization: Bearer KEY``.
    """

    __slots__ = ()
    name: Final = "openai"
    base_path: Final = "/v1"
    errors: Final = OpenAIErrors()
    routes: Final = tuple(
        RouteSpec(method, prefix + path, route)
        for prefix in ("/v1", "")
        for method, path, route in (
            ("POST", "/chat/completions", Route("chat")),
            ("POST", "/responses", Route("chat", variant="responses")),
            ("POST", "/embeddings", Route("embed")),
            ("GET", "/models", Route("info")),
            ("GET", "/models/{model}", Route("info")),
        )
    )

    def authorize(self, req: Request, api_key: str | None) -> Response | None:
        if api_key is None:
            return None
        supplied = bearer_token(req)
        return None if supplied == api_key else Response(401, invalid_api_key(supplied))

    def headers(self, seq: int) -> list[tuple[str, str]] | None:
        return [("x-request-id", f"req_sim{seq:024d}")]

    def parse_chat(self, req: Request, route: Route, trigger: str) -> ChatRequest:
        return parse_chat(chat_body(req.body) if route.variant == "responses" else req.body, trigger)

    def parse_embed(self, req: Request, route: Route) -> EmbedRequest:
        return parse_embeddings(req.body)

    def completion(self, turn: Turn) -> bytes:
        chat, reply = turn.chat, turn.reply
        tool = None if reply.tool is None else (tool_call_id(turn.seq), reply.tool.name, reply.tool.arguments)
        body = chat_completion(
            f"chatcmpl-sim{turn.seq:020d}", int(turn.created), chat.model, reply.text, _FINISH[reply.finish],
            chat.prompt_tokens, reply.completion_tokens, tool,
        )  # fmt: skip
        if turn.route.variant == "responses":
            return response_body(body, turn)
        return body if chat.n == 1 else _n_choices(body, chat.n)

    def text_delta(self, text: str) -> bytes:
        return content_delta(text)

    def stream(self, turn: Turn, text: Sequence[bytes]) -> StreamPlan:
        chat, reply = turn.chat, turn.reply
        writers = [ChunkWriter(f"chatcmpl-sim{turn.seq:020d}", int(turn.created), chat.model, chat.include_usage, i)
                   for i in range(chat.n)]
        deltas = stream_deltas(turn, text, tool_arguments_delta)
        tool = reply.tool
        if turn.route.variant == "responses":
            start = None if tool is None else (tool_call_id(turn.seq), tool.name)
            return response_stream(turn, deltas, _FINISH[reply.finish], start)
        first = b"".join(w.role() if tool is None else w.tool_start(tool_call_id(turn.seq), tool.name) for w in writers)
        closing = [b"".join(w.finish(_FINISH[reply.finish]) for w in writers)]
        if chat.include_usage:
            closing.append(writers[0].usage(chat.prompt_tokens, reply.completion_tokens * chat.n))
        closing.append(DONE)
        return StreamPlan(writers[0] if chat.n == 1 else ChoicesWriter(writers), first, deltas, closing)

    def embeddings(self, emb: EmbedRequest, route: Route, vectors: list[list[float]], duration: float) -> bytes:
        return embeddings_response(emb.model, vectors, emb.base64, emb.prompt_tokens)

    def info(self, req: Request, route: Route, models: Sequence[str], accept_any: bool, created: float) -> Response:
        if route.model is None:
            return Response(200, model_list(models, int(created)))
        if route.model in models or accept_any:
            return Response(200, orjson.dumps(model_object(route.model, int(created))))
        return self.errors.model_not_found(route.model)
