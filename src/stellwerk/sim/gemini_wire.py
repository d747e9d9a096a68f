"""The Gemini API wire format (generativelanguage v1beta): request parsing and GenerateContentResponse bodies.

Pure translation, no I/O and no behaviour. The model and the method are in the
path (``/v1beta/models/{model}:generateContent``); the key is in ``x-goog-api-key``
or ``?key=``. A streamed answer (``:streamGenerateContent?alt=sse``) is a sequence of
SSE events, each a whole GenerateContentResponse, separated by CRLF pairs as Google
sends them::

    data: {"candidates":[{"content":{"parts":[{"text":"word"}],"role":"model"},"index":0}],"usageMetadata":{...},...}
    data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],...}

Without ``alt=sse`` the same chunks form one JSON array streamed piece by piece.
A tool call is a ``functionCall`` part (in one chunk when streamed); ``maxOutputTokens``
ends with ``finishReason: "MAX_TOKENS"``; the content-policy trigger gets
``promptFeedback.blockReason: "SAFETY"`` and no candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from stellwerk.http.server import Request, Response
from stellwerk.sim.content import estimate_tokens
from stellwerk.sim.gemini_errors import (
    GeminiErrors,
    api_key_invalid,
    invalid_argument,
    permission_denied,
    stream_error_chunk,
)
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
    WireError,
    asked_words,
    ends_with_tool_result,
    is_count,
    load_object,
    scan_text,
    with_json,
)

__all__ = ["ChunkWriter", "GeminiDialect", "generate_response", "parse_embed", "parse_generate"]

_FINISH: Final[dict[Finish, str]] = {"stop": "STOP", "length": "MAX_TOKENS", "tool": "STOP", "blocked": "SAFETY"}
_NOT_JSON: Final = partial(invalid_argument, "Invalid JSON payload received. Unexpected token.")
_CANDIDATE_HEAD: Final = b'{"candidates":[{"content":{"parts":['


# -- requests -------------------------------------------------------------------------------------------------------
def parse_generate(body: bytes, model: str, stream: bool, trigger: str = "") -> ChatRequest:
    """Validate (minimally) and summarise a ``generateContent`` body; raises :class:`WireError`."""
    data = load_object(body, _NOT_JSON)
    contents = data.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified\n")
    parts: list[object] = []
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
            raise invalid_argument(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n")
        parts.append(content["parts"])
    system = data.get("systemInstruction")
    if isinstance(system, dict):
        parts.append(system.get("parts"))
    chars, flagged = scan_text(parts, trigger.lower())
    config = data.get("generationConfig")
    config = config if isinstance(config, dict) else {}
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and not is_count(max_tokens):
        raise invalid_argument("* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n")
    response_format, schema = "text", None
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        response_format = "json_schema" if schema is not None else "json_object"
    answered = ends_with_tool_result(data.get("contents"), "parts", lambda p: "functionResponse" in p)
    tool_name, tool_parameters = (None, None) if answered else _pick_tool(data)  # a tool result: answer in text
    system_parts = system.get("parts") if isinstance(system, dict) else None
    chat = ChatRequest(
        model, stream, False, max_tokens, estimate_tokens(chars), flagged, tool_name, tool_parameters, response_format,
        schema, words=asked_words(system_parts),
    )  # fmt: skip
    return with_json(chat, system_parts, parts)


def _pick_tool(data: dict[str, Any]) -> tuple[str | None, Any]:
    tools = data.get("tools")
    if not tools:
        return None, None
    if not isinstance(tools, list):
        raise invalid_argument("* GenerateContentRequest.tools: must be a list\n")
    declarations = [
        d
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("functionDeclarations"), list)
        for d in tool["functionDeclarations"]
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]
    config = data.get("toolConfig")
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    mode = calling.get("mode", "AUTO") if isinstance(calling, dict) else "AUTO"
    if not declarations or mode == "NONE":
        return None, None
    allowed = calling.get("allowedFunctionNames") if isinstance(calling, dict) else None
    if mode == "ANY" and isinstance(allowed, list) and allowed:
        declarations = [d for d in declarations if d["name"] in allowed] or declarations
    chosen = declarations[0]
    return chosen["name"], chosen.get("parametersJsonSchema", chosen.get("parameters"))


def _embed_text(content: object) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise invalid_argument("* EmbedContentRequest.content: contents is not specified\n")
    return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def parse_embed(body: bytes, model: str, batch: bool) -> EmbedRequest:
    """Summarise an ``embedContent`` (or, with ``batch``, a ``batchEmbedContents``) body."""
    data = load_object(body, _NOT_JSON)
    requests = data.get("requests") if batch else [data]
    if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
        raise invalid_argument("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    texts = tuple(_embed_text(r.get("content")) for r in requests)
    dimensions = requests[0].get("outputDimensionality")
    if dimensions is not None and not (is_count(dimensions) and dimensions <= MAX_DIMENSIONS):
        raise invalid_argument("* EmbedContentRequest.output_dimensionality: must be positive\n")
    return EmbedRequest(model, texts, False, dimensions, sum(estimate_tokens(len(t)) for t in texts))


# -- responses ------------------------------------------------------------------------------------------------------
def response_id(seq: int) -> str:
    return f"sim{seq:020d}"


def _usage(prompt: int, candidates: int | None) -> bytes:
    if candidates is None:
        return b'{"promptTokenCount":%d,"totalTokenCount":%d}' % (prompt, prompt)
    return (
        b'{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d,'
        b'"promptTokensDetails":[{"modality":"TEXT","tokenCount":%d}]}' % (prompt, candidates, prompt + candidates, prompt)
    )


def _trailer(turn: Turn, usage: bytes) -> bytes:
    """``"usageMetadata":...,"modelVersion":...,"responseId":...}`` closing a response object."""
    return b'"usageMetadata":%s,"modelVersion":%s,"responseId":"%s"}' % (
        usage,
        orjson.dumps(turn.chat.model),
        response_id(turn.seq).encode(),
    )


def _blocked(turn: Turn) -> bytes:
    feedback = b'{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT",'
    feedback += b'"probability":"HIGH","blocked":true}]},'
    return feedback + _trailer(turn, _usage(turn.chat.prompt_tokens, None))


def _part(turn: Turn) -> bytes:
    reply = turn.reply
    if reply.tool is not None:
        return b'{"functionCall":{"name":%s,"args":%s}}' % (orjson.dumps(reply.tool.name), reply.tool.arguments.encode())
    return text_part(reply.text or "")


def _final(turn: Turn, part: bytes) -> bytes:
    reply = turn.reply
    candidate = b'%s],"role":"model"},"finishReason":"%s","index":0}],' % (part, _FINISH[reply.finish].encode())
    return _CANDIDATE_HEAD + candidate + _trailer(turn, _usage(turn.chat.prompt_tokens, reply.completion_tokens))


def generate_response(turn: Turn) -> bytes:
    """The GenerateContentResponse answering a non-streamed request."""
    if turn.reply.finish == "blocked":
        return _blocked(turn)
    return _final(turn, _part(turn))


def text_part(text: str) -> bytes:
    return b'{"text":' + orjson.dumps(text) + b"}"


class ChunkWriter(Framing):
    """Frames the chunks of one stream: SSE events (``alt=sse``) or the elements of a JSON array."""

    __slots__ = ("_sse",)

    def __init__(self, turn: Turn, sse: bool) -> None:
        self._sse = sse
        tail = b'],"role":"model"},"index":0}],' + _trailer(turn, _usage(turn.chat.prompt_tokens, None))
        super().__init__((b"data: " if sse else b",\r\n") + _CANDIDATE_HEAD, tail + b"\r\n\r\n" if sse else tail)

    def frame(self, chunk: bytes, last: bool = False) -> bytes:
        """One whole chunk (JSON) framed as a later chunk; ``last`` closes the array."""
        if self._sse:
            return b"data: " + chunk + b"\r\n\r\n"
        return b",\r\n" + chunk + (b"]" if last else b"")

    def only(self, chunk: bytes) -> bytes:
        """A stream of just ``chunk``."""
        return self.frame(chunk) if self._sse else b"[" + chunk + b"]"

    def start(self) -> bytes:
        """What precedes the deltas: nothing for SSE; ``[`` and a chunk with empty text for an array."""
        return b"" if self._sse else b"[" + self.event(text_part(""))[len(b",\r\n") :]

    def broken(self) -> bytes:
        return self.frame(_CANDIDATE_HEAD + b'{"te')

    def error(self, status: int) -> bytes:
        return self.frame(stream_error_chunk(status), last=True)


# -- the dialect ------------------------------------------------------------------------------------------------------


def _query(query: str, name: str) -> str | None:
    values = parse_qs(query).get(name) if query else None
    return values[0] if values else None


class GeminiDialect:
    """Gemini: ``POST /v1beta/models/{model}:generateContent | :streamGenerateContent | :embedContent |
    :batchEmbedContents | :countTokens``, ``GET /v1beta/models[/{model}]`` (``/v1/`` too).

    Auth: ``x-goog-api-key`` or ``?key=``; no key is 403 ``PERMISSION_DENIED``, a wrong one 400 ``API_KEY_INVALID``.
    """

    __slots__ = ()
    name: Final = "gemini"
    base_path: Final = ""
    errors: Final = GeminiErrors()
    routes: Final = tuple(
        RouteSpec(method, version + path, route, query)
        for version in ("/v1beta", "/v1")
        for method, path, route, query in (
            ("POST", "/models/{model}:generateContent", Route("chat"), ""),
            ("POST", "/models/{model}:streamGenerateContent", Route("chat", stream=True), "alt=sse"),
            ("POST", "/models/{model}:streamGenerateContent", Route("chat", stream=True, variant="array"), ""),
            ("POST", "/models/{model}:embedContent", Route("embed"), ""),
            ("POST", "/models/{model}:batchEmbedContents", Route("embed", variant="batch"), ""),
            ("POST", "/models/{model}:countTokens", Route("info", variant="count"), ""),
            ("GET", "/models", Route("info"), ""),
            ("GET", "/models/{model}", Route("info"), ""),
        )
    )

    def authorize(self, req: Request, api_key: str | None) -> Response | None:
        if api_key is None:
            return None
        supplied = req.headers.get("x-goog-api-key") or _query(req.query, "key")
        if supplied is None:
            return permission_denied()
        return None if supplied == api_key else api_key_invalid()

    def headers(self, seq: int) -> list[tuple[str, str]] | None:
        return None

    def parse_chat(self, req: Request, route: Route, trigger: str) -> ChatRequest:
        return parse_generate(req.body, route.model or "", route.stream, trigger)

    def parse_embed(self, req: Request, route: Route) -> EmbedRequest:
        return parse_embed(req.body, route.model or "", route.variant == "batch")

    def completion(self, turn: Turn) -> bytes:
        return generate_response(turn)

    def text_delta(self, text: str) -> bytes:
        return text_part(text)

    def stream(self, turn: Turn, text: Sequence[bytes]) -> StreamPlan:
        sse = turn.route.variant != "array"
        writer = ChunkWriter(turn, sse)
        content_type = "text/event-stream" if sse else "application/json"
        reply = turn.reply
        if reply.finish == "blocked":
            return StreamPlan(writer, writer.only(_blocked(turn)), (), [], content_type)
        # A function call comes whole, in the chunk with the finish reason; text ends with an empty final part.
        closing = [writer.frame(_final(turn, _part(turn) if reply.tool is not None else text_part("")), last=True)]
        return StreamPlan(writer, writer.start(), text, closing, content_type)

    def embeddings(self, emb: EmbedRequest, route: Route, vectors: list[list[float]], duration: float) -> bytes:
        if route.variant == "batch":
            return orjson.dumps({"embeddings": [{"values": v} for v in vectors]})
        return orjson.dumps({"embedding": {"values": vectors[0]}})

    def info(self, req: Request, route: Route, models: Sequence[str], accept_any: bool, created: float) -> Response:
        if route.variant == "count":
            try:
                data = load_object(req.body, _NOT_JSON) if req.body else {}
                request = data.get("generateContentRequest", data)
                chat = parse_generate(orjson.dumps(request), route.model or "", False)
            except WireError as exc:
                return exc.response()
            return Response(200, b'{"totalTokens":%d}' % chat.prompt_tokens)
        if route.model is None:
            return Response(200, orjson.dumps({"models": [_model_info(m) for m in models]}))
        if route.model in models or accept_any:
            return Response(200, orjson.dumps(_model_info(route.model)))
        return self.errors.model_not_found(route.model)


def _model_info(model: str) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "supportedGenerationMethods": ["generateContent", "countTokens", "embedContent", "batchEmbedContents"],
    }
