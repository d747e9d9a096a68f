"""What every wire protocol shares: request summaries, the planned reply, and the :class:`Dialect` interface.

The server (:mod:`stellwerk.sim.server`) is protocol-free; it asks the dialect of its
protocol for everything that touches the wire. One chat request goes::

    RouteTable(dialect.routes).match()  -> Route      (None: the protocol's 404)
    dialect.authorize(request, api_key) -> None, or the protocol's 401/403
    dialect.parse_chat(request, route)  -> ChatRequest (or raises WireError: the protocol's 400)
    Behaviour.decide(...)               -> Decision   (see behaviour.py)
    ReplyPlanner.plan(chat, ...)        -> Reply      (words, a tool call or JSON; no protocol in it)
    dialect.completion(turn)            -> body       (non-streamed)
    dialect.stream(turn, text_deltas)   -> StreamPlan (streamed: framed events around unframed deltas)
    dialect.errors.*                    -> the protocol's error answers (429, 5xx, context window, ...)

Embeddings go the same way through :class:`Embedder` (``parse_embed``, ``embeddings``), which only
the protocols with embedding routes implement. A dialect is a plain object;
:data:`stellwerk.sim.dialects.PROTOCOLS` maps protocol names to their factories.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable
from urllib.parse import unquote

import orjson

from stellwerk.http.server import Request, Response
from stellwerk.sim.content import LENGTHS_KEPT, ReplyCache, estimate_tokens, schema_example

__all__ = [
    "BLOCKED",
    "MAX_DIMENSIONS",
    "ChatRequest",
    "Dialect",
    "EmbedRequest",
    "Embedder",
    "Endpoint",
    "ErrorShapes",
    "Finish",
    "Framing",
    "Reply",
    "ReplyPlanner",
    "Route",
    "RouteSpec",
    "RouteTable",
    "StreamPlan",
    "StreamWriter",
    "ToolCall",
    "Turn",
    "WireError",
    "bearer_token",
    "ceil_seconds",
    "ends_with_tool_result",
    "fragments",
    "is_count",
    "load_object",
    "required_string",
    "rfc3339",
    "scan_text",
    "simulated_error",
    "stream_deltas",
]


MAX_DIMENSIONS = 8192
"""Largest embedding the sim makes (a fuzzed ``dimensions: 11882702584`` must not eat the machine)."""


def ends_with_tool_result(turns: object, field: str, is_result: Callable[[dict[str, Any]], bool]) -> bool:
    """Whether the last turn's ``field`` (a list of blocks) holds a tool result: the model then answers in text,
    so that agent loops end (each protocol says what a tool result block is)."""
    if not isinstance(turns, list) or not turns or not isinstance(turns[-1], dict):
        return False
    blocks = turns[-1].get(field)
    return isinstance(blocks, list) and any(isinstance(b, dict) and is_result(b) for b in blocks)


class WireError(Exception):
    """A request the wire layer rejects, with the protocol's answer (status, body, extra headers)."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(body.decode("utf-8", "replace"))
        self.status = status
        self._body = body
        self.headers = headers

    def body(self) -> bytes:
        return self._body

    def response(self) -> Response:
        return Response(self.status, self.body(), self.headers)


# -- requests -------------------------------------------------------------------------------------------------------
Endpoint = Literal["chat", "embed", "info"]
"""What a route serves; ``"info"`` routes (model lists, token counts) are answered by :meth:`Dialect.info`
with no injected faults. Strings, not an enum: the server compares them on every request."""


class Route(NamedTuple):
    """Where a request goes, with what the path says about it."""

    endpoint: Endpoint
    model: str | None = None
    """The model named in the path (Gemini, Bedrock, ``GET /v1/models/{id}``)."""
    stream: bool = False
    """The path asks for a stream (Gemini ``:streamGenerateContent``, Bedrock ``/converse-stream``)."""
    variant: str = ""
    """Protocol-specific detail, e.g. Gemini's ``"batch"`` (batchEmbedContents) or ``"array"`` (stream without alt=sse)."""


class RouteSpec(NamedTuple):
    """One row of a protocol's routing table."""

    method: str
    path: str
    """The path; one ``{model}`` placeholder takes the model from the path (percent-decoded)."""
    route: Route
    query: str = ""
    """A ``name=value`` pair the query string must hold ("" matches any query)."""


class RouteTable:
    """Matches requests against a protocol's :class:`RouteSpec` rows: fixed paths by one dict lookup,
    ``{model}`` paths (and rows with a query condition) in table order."""

    __slots__ = ("_fixed", "_patterns")

    def __init__(self, specs: Iterable[RouteSpec]) -> None:
        self._fixed: dict[tuple[str, str], Route] = {}
        self._patterns: list[tuple[str, str, str, str, Route]] = []
        for spec in specs:
            if "{model}" in spec.path or spec.query:
                prefix, placeholder, suffix = spec.path.partition("{model}")
                if not placeholder:
                    raise ValueError(f"{spec.path}: a query condition needs a {{model}} path")
                self._patterns.append((spec.method, prefix, suffix, spec.query, spec.route))
            else:
                self._fixed.setdefault((spec.method, spec.path), spec.route)

    def match(self, method: str, path: str, query: str) -> Route | None:
        route = self._fixed.get((method, path))
        if route is not None or not self._patterns:
            return route
        for want_method, prefix, suffix, want_query, template in self._patterns:
            if method != want_method or len(path) <= len(prefix) + len(suffix):
                continue
            if not path.startswith(prefix) or not path.endswith(suffix):
                continue
            if want_query and want_query not in query.split("&"):
                continue
            return template._replace(model=unquote(path[len(prefix) : len(path) - len(suffix)]))
        return None


class ChatRequest(NamedTuple):
    """What the sim needs from a chat request in any protocol (a tuple: cheap to build on the hot path)."""

    model: str
    stream: bool
    include_usage: bool
    """OpenAI's ``stream_options.include_usage``; False elsewhere."""
    max_tokens: int | None
    prompt_tokens: int
    flagged: bool
    """The prompt contains the content-policy trigger word."""
    tool_name: str | None
    """The tool to call (first tool, or the one forced by the tool choice), or None for text."""
    tool_parameters: Any
    response_format: str
    """``"text"``, ``"json_object"`` or ``"json_schema"``."""
    json_schema: Any
    resume_words: int = 0
    """Words of a partial answer to continue (see :func:`resume_words`); 0 for a new answer."""
    n: int = 1
    """Choices asked for (OpenAI's ``n``; answers and streams carry that many)."""
    words: int | None = None
    """Words the system prompt asks for ("answer in 5 words"; :func:`asked_words`), else the profile's count."""
    json_example: Any = None
    """``json_object`` answers: the JSON object the conversation shows as an example (:func:`with_json`), if any."""


class EmbedRequest(NamedTuple):
    model: str
    inputs: tuple[str | tuple[int, ...], ...]
    base64: bool
    dimensions: int | None
    prompt_tokens: int


def required_string(data: dict[str, Any], key: str, error: Callable[[], WireError]) -> str:
    """``data[key]`` if it is a non-empty string, else raise ``error()``.

    Errors come from factories: raising one shared exception object again and again would grow its traceback.
    """
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise error()
    return value


def load_object(body: bytes, error: Callable[[], WireError]) -> dict[str, Any]:
    """``body`` parsed as a JSON object, else raise ``error()``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise error()
    return data


def plain_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


_ASKED_WORDS = re.compile(r"\b(?:in|with|using)\s+(?:exactly\s+|at most\s+|only\s+)?(\d{1,4})\s+words?\b", re.I)


def asked_words(system: object) -> int | None:
    """How many words a system prompt asks for ("Answer in 5 words.", "Reply with exactly 12 words"), else None.

    ``system`` is a string, or a list of ``{"text": ...}`` parts (Anthropic's blocks, Gemini's and Bedrock's parts).
    The sim honours it, so tests can tell that a system prompt (or ``instructions``) reached the upstream.
    """
    found = _ASKED_WORDS.search(plain_text(system))
    words = int(found.group(1)) if found else 0
    return words if words > 0 else None


_JSON_SPAN = re.compile(r"\{.*\}", re.S)


def with_json(chat: ChatRequest, system: object, texts: Iterable[object]) -> ChatRequest:
    """``chat`` answering in JSON as a model told so would: ``json_object`` also when the system prompt asks for
    JSON (the gateway's instruction to Anthropic deployments, a user's own), and then in the shape of the last
    JSON object the conversation shows ("Reply like {\"city\": \"Oslo\", \"days\": 2}"), else ``{"reply": ...}``."""
    kind = chat.response_format
    if kind == "text" and chat.tool_name is None and "json" in plain_text(system).lower():
        kind = "json_object"
    if kind != "json_object":
        return chat
    example = None
    for text in reversed([plain_text(t) for t in texts]):
        found = _JSON_SPAN.search(text)
        if found is not None:
            try:
                value = orjson.loads(found.group())
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                example = value
                break
    return chat._replace(response_format=kind, json_example=example)


def resume_words(messages: Sequence[object]) -> int:
    """How many words of a cut-off answer the request asks the sim to continue.

    A conversation that ends with an assistant message (a *prefill*), or with an assistant
    message followed by a user message asking to continue, continues the sim's deterministic
    reply after that many words, so that partial answer + continuation = the whole reply.
    """
    if not messages or not isinstance(messages[-1], dict):
        return 0
    last = messages[-1]
    if last.get("role") == "assistant":
        return len(plain_text(last.get("content")).split())
    if len(messages) >= 2 and last.get("role") == "user" and "continue" in plain_text(last.get("content")).lower():
        before = messages[-2]
        if isinstance(before, dict) and before.get("role") == "assistant":
            return len(plain_text(before.get("content")).split())
    return 0


def scan_text(contents: Iterable[object], needle: str) -> tuple[int, bool]:
    """Characters of text in ``contents`` (strings, or lists of ``{"text": ...}`` parts) and whether ``needle`` occurs.

    ``needle`` must be lower-case; "" never matches.
    """
    chars = 0
    found = False
    for content in contents:
        if isinstance(content, str):
            chars += len(content)
            if needle and not found:
                found = needle in content.lower()
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    chars += len(text)
                    if needle and not found:
                        found = needle in text.lower()
    return chars, found


# -- replies --------------------------------------------------------------------------------------------------------
Finish = Literal["stop", "length", "tool", "blocked"]
"""Why a reply ends: all words given, ``max_tokens`` reached, a tool call, or the content-policy trigger
("blocked", for protocols that answer it with 200: Anthropic, Gemini, Bedrock). A string, not an enum:
dialects look it up per request."""


class ToolCall(NamedTuple):
    name: str
    arguments: str
    """The arguments as JSON text (``schema_example`` of the tool's parameters)."""


class Reply(NamedTuple):
    """What the answer says, in no protocol."""

    text: str | None
    words: int
    """If > 0, ``text`` is the ``words``-word reply and streams in cached word pieces; else in fragments."""
    tool: ToolCall | None
    finish: Finish
    completion_tokens: int


BLOCKED = Reply(None, 0, None, "blocked", 0)


class ReplyPlanner:
    """Plans the reply to each chat request for one seed; plain-text replies are cached (the hot path repeats them).

    A tool call gets ``schema_example`` arguments; ``json_schema`` output a ``schema_example`` value;
    otherwise ``output_tokens`` words, or as many as the system prompt asks for (cut by ``max_tokens``), wrapped as
    ``{"reply": ...}`` for ``json_object`` (or the example object the conversation shows: :func:`with_json`).
    """

    __slots__ = ("_plain", "words")

    def __init__(self, seed: int) -> None:
        self.words = ReplyCache(seed)
        self._plain: dict[tuple[int, Finish], Reply] = {}

    def plan(self, chat: ChatRequest, output_tokens: int) -> Reply:
        if chat.tool_name is not None:
            arguments = orjson.dumps(schema_example(chat.tool_parameters)).decode()
            return Reply(None, 0, ToolCall(chat.tool_name, arguments), "tool", estimate_tokens(len(arguments)))
        if chat.response_format == "json_schema":
            content = orjson.dumps(schema_example(chat.json_schema)).decode()
            return Reply(content, 0, None, "stop", estimate_tokens(len(content)))
        n: int = chat.words or output_tokens
        finish: Finish = "stop"
        if chat.resume_words and chat.response_format == "text":
            k = min(chat.resume_words, n)
            end = n if chat.max_tokens is None else min(n, k + chat.max_tokens)
            rest = self.words.words(n)[k:end]
            text = (" " + " ".join(rest)) if rest else ""
            return Reply(text, 0, None, "stop" if end == n else "length", len(rest))
        if chat.max_tokens is not None and chat.max_tokens < n:
            n, finish = chat.max_tokens, "length"
        if chat.response_format == "json_object":
            shown = chat.json_example
            content = orjson.dumps(shown if shown is not None else {"reply": " ".join(self.words.words(n))}).decode()
            return Reply(content, 0, None, finish, n)
        key = (n, finish)
        reply = self._plain.get(key)
        if reply is None:
            if len(self._plain) > LENGTHS_KEPT:
                self._plain.clear()
            reply = self._plain[key] = Reply(" ".join(self.words.words(n)), n, None, finish, n)
        return reply


class Turn(NamedTuple):
    """One answered chat request: everything a dialect needs to write the answer."""

    seq: int
    """Per-sim request number, for ids."""
    created: float
    """Wall-clock seconds when the request arrived."""
    chat: ChatRequest
    route: Route
    reply: Reply
    ttft: float
    """Seconds before the first token, for latency fields (Ollama's durations, Bedrock's latencyMs)."""
    duration: float
    """Seconds the whole answer takes (TTFT + tokens at the drawn pace)."""
    chunk_chars: int
    """Characters per streamed fragment of JSON text or tool arguments."""


def fragments(text: str, size: int) -> list[str]:
    """``text`` in pieces of ``size`` characters (at least one piece)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_deltas(turn: Turn, text: Sequence[bytes], tool_delta: Callable[[str], bytes]) -> Sequence[bytes]:
    """The deltas of a stream: ``text``, or for a tool call its arguments in fragments encoded by ``tool_delta``."""
    if turn.reply.tool is None:
        return text
    return [tool_delta(f) for f in fragments(turn.reply.tool.arguments, turn.chunk_chars)]


def is_count(value: object) -> bool:
    """``value`` is an integer >= 1 (and not a bool): a token limit or a dimension."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def bearer_token(req: Request) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, if there is one."""
    auth = req.headers.get("authorization", "")
    return auth[7:] if auth[:7].lower() == "bearer " else None


def simulated_error(status: int) -> str:
    """The message of an injected failure whose status the protocol has no wording for."""
    return f"Simulated {'client' if status < 500 else 'server'} error ({status})."


def ceil_seconds(seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header (rounded up, at least 0)."""
    return max(0, -int(-seconds // 1))


def rfc3339(t: float) -> str:
    """Wall-clock seconds as an RFC 3339 UTC timestamp with microseconds (``2025-01-02T03:04:05.678901Z``)."""
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the interfaces each protocol implements ---------------------------------------------------------------------------
class Framing:
    """Frames deltas between a constant head and tail: SSE ``data:`` events, NDJSON lines.

    Stream writers built on it add ``broken`` and ``error`` (see :class:`StreamWriter`).
    """

    __slots__ = ("_head", "_tail")

    def __init__(self, head: bytes, tail: bytes) -> None:
        self._head = head
        self._tail = tail

    def event(self, delta: bytes) -> bytes:
        return self._head + delta + self._tail

    def events(self, deltas: Sequence[bytes]) -> bytes:
        if not deltas:
            return b""
        return self._head + (self._tail + self._head).join(deltas) + self._tail


class StreamWriter(Protocol):
    """Frames one stream's events."""

    def event(self, delta: bytes) -> bytes:
        """The framed event carrying one content ``delta`` (as built by the dialect)."""

    def events(self, deltas: Sequence[bytes]) -> bytes:
        """Several deltas framed and joined (the fast path for unpaced streams)."""

    def broken(self) -> bytes:
        """An event that does not parse (the malformed outcome)."""

    def error(self, status: int) -> bytes:
        """The protocol's in-stream error event for a failure of ``status`` (the stream-error outcome)."""


class StreamPlan(NamedTuple):
    writer: StreamWriter
    first: bytes
    """Framed events before the first delta (message start, role, tool start)."""
    deltas: Sequence[bytes]
    """Unframed content deltas, sent paced through ``writer.event``."""
    closing: Iterable[bytes]
    """Framed events after the last delta (stop reason, usage, terminator), read once, after the deltas."""
    content_type: str = "text/event-stream"


class ErrorShapes(Protocol):
    """The protocol's error answers."""

    def not_found(self, method: str, path: str) -> Response: ...

    def model_not_found(self, model: str) -> Response: ...

    def rate_limited(self, model: str, retry_after: float) -> Response: ...

    def server_error(self, status: int) -> Response:
        """An injected failure of ``status`` (any 400..599) in the protocol's shape."""

    def context_too_long(self, window: int, prompt_tokens: int) -> Response: ...

    def content_blocked(self) -> Response | None:
        """The answer to a prompt with the trigger word, or None to answer 200 with a ``"blocked"`` reply."""


@runtime_checkable
class Embedder(Protocol):
    """What a dialect with ``"embed"`` routes adds (OpenAI, Gemini, Ollama)."""

    def parse_embed(self, req: Request, route: Route) -> EmbedRequest: ...

    def embeddings(self, emb: EmbedRequest, route: Route, vectors: list[list[float]], duration: float) -> bytes: ...


class Dialect(Protocol):
    """One wire protocol: routes, auth, parsing and bodies."""

    @property
    def name(self) -> str: ...

    @property
    def base_path(self) -> str:
        """What follows ``http://host:port`` in the base URL a client of this protocol is given."""

    @property
    def errors(self) -> ErrorShapes: ...

    @property
    def routes(self) -> Sequence[RouteSpec]:
        """The routing table (see :class:`RouteTable`); unmatched requests get ``errors.not_found``."""

    def authorize(self, req: Request, api_key: str | None) -> Response | None:
        """None if the request may pass, else the protocol's 401/403."""

    def headers(self, seq: int) -> list[tuple[str, str]] | None:
        """Headers sent with every answer to a chat or embeddings request (request ids)."""

    def parse_chat(self, req: Request, route: Route, trigger: str) -> ChatRequest: ...

    def completion(self, turn: Turn) -> bytes: ...

    def text_delta(self, text: str) -> bytes:
        """The unframed delta carrying ``text`` (cached per reply length by the server)."""

    def stream(self, turn: Turn, text: Sequence[bytes]) -> StreamPlan:
        """The stream for ``turn``; ``text`` holds the text deltas (empty for tool calls and blocked prompts)."""

    def info(self, req: Request, route: Route, models: Sequence[str], accept_any: bool, created: float) -> Response:
        """Answer an ``"info"`` route (model lists, token counts)."""
