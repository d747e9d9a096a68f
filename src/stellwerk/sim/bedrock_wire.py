"""The Bedrock Runtime Converse wire format: request parsing, Converse bodies and ConverseStream frames.

Pure translation, no I/O and no behaviour. The model id is in the path
(``/model/{modelId}/converse``, percent-encoded by the SDKs). ``/converse-stream``
answers with event-stream frames (see :mod:`stellwerk.sim.eventstream`), one JSON
payload each, named by ``:event-type``::

    messageStart       {"role":"assistant"}
    contentBlockStart  {"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":...,"name":...}}}   (tool calls only)
    contentBlockDelta  {"contentBlockIndex":0,"delta":{"text":"word"}}      or {"toolUse":{"input":"{\\"ci"}}
    contentBlockStop   {"contentBlockIndex":0}
    messageStop        {"stopReason":"end_turn"}                            (tool_use, max_tokens, content_filtered)
    metadata           {"usage":{"inputTokens":..,"outputTokens":..,"totalTokens":..},"metrics":{"latencyMs":..}}

The sim does not verify SigV4 signatures; it wants an ``Authorization`` header that is
SigV4 (``AWS4-HMAC-SHA256 Credential=KEYID/...``) or a Bedrock API key (``Bearer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final

import orjson

from stellwerk.http.server import Request, Response
from stellwerk.sim.bedrock_errors import BedrockErrors, error, stream_exception, validation
from stellwerk.sim.content import estimate_tokens
from stellwerk.sim.eventstream import event_headers, frame
from stellwerk.sim.protocol import (
    ChatRequest,
    Finish,
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
    scan_text,
    stream_deltas,
    with_json,
)

__all__ = ["BedrockDialect", "FrameWriter", "converse_response", "parse_converse"]

_STOP: Final[dict[Finish, str]] = {
    "stop": "end_turn", "length": "max_tokens", "tool": "tool_use", "blocked": "content_filtered",
}  # fmt: skip
_NOT_JSON: Final = partial(validation, "Malformed input request, please reformat your input and try again.")
_HEADERS: Final = {
    name: event_headers(name)
    for name in ("messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata")
}


# -- requests -------------------------------------------------------------------------------------------------------
def parse_converse(body: bytes, model: str, stream: bool, trigger: str = "") -> ChatRequest:
    """Validate (minimally) and summarise a Converse / ConverseStream body; raises :class:`WireError`."""
    data = load_object(body, _NOT_JSON)
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise _constraint("messages", "Member must not be null")
    if not messages:
        raise validation(
            "A conversation must start with a user message. Try again with a conversation that starts with a user message."
        )
    for i, message in enumerate(messages, 1):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _constraint(f"messages.{i}.member.role", "Member must satisfy enum value set: [user, assistant]")
        if not isinstance(message.get("content"), list):
            raise _constraint(f"messages.{i}.member.content", "Member must not be null")
    chars, flagged = scan_text([data.get("system"), *(m["content"] for m in messages)], trigger.lower())
    config = data.get("inferenceConfig")
    max_tokens = config.get("maxTokens") if isinstance(config, dict) else None
    if max_tokens is not None and not is_count(max_tokens):
        raise _constraint("inferenceConfig.maxTokens", "Member must have value greater than or equal to 1", repr(max_tokens))
    answered = ends_with_tool_result(data.get("messages"), "content", lambda b: "toolResult" in b)
    tool_name, tool_parameters = (None, None) if answered else _pick_tool(data.get("toolConfig"))
    chat = ChatRequest(
        model, stream, False, max_tokens, estimate_tokens(chars), flagged, tool_name, tool_parameters, "text", None,
        words=asked_words(data.get("system")),
    )  # fmt: skip
    return with_json(chat, data.get("system"), [data.get("system"), *(m["content"] for m in messages)])


def _constraint(where: str, rule: str, value: str = "null") -> WireError:
    return validation(f"1 validation error detected: Value {value} at '{where}' failed to satisfy constraint: {rule}")


def _pick_tool(config: object) -> tuple[str | None, Any]:
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list) or not tools:
        return None, None
    specs = [t["toolSpec"] for t in tools if isinstance(t, dict) and isinstance(t.get("toolSpec"), dict)]
    if not specs or not all(isinstance(s.get("name"), str) for s in specs):
        raise validation("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    assert isinstance(config, dict)
    choice = config.get("toolChoice")
    forced = choice.get("tool") if isinstance(choice, dict) else None
    if isinstance(forced, dict):
        for spec in specs:
            if spec["name"] == forced.get("name"):
                return spec["name"], _schema(spec)
        raise validation("The tool specified in toolChoice was not found in toolConfig.tools.")
    return specs[0]["name"], _schema(specs[0])


def _schema(spec: dict[str, Any]) -> Any:
    schema = spec.get("inputSchema")
    return schema.get("json") if isinstance(schema, dict) else None


# -- responses ------------------------------------------------------------------------------------------------------
def tool_use_id(seq: int) -> str:
    return f"tooluse_sim{seq:020d}"


def _usage(turn: Turn) -> bytes:
    prompt, completion = turn.chat.prompt_tokens, turn.reply.completion_tokens
    return b'"usage":{"inputTokens":%d,"outputTokens":%d,"totalTokens":%d},"metrics":{"latencyMs":%d}}' % (
        prompt,
        completion,
        prompt + completion,
        int(turn.duration * 1000),
    )


def converse_response(turn: Turn) -> bytes:
    """The Converse answer to a non-streamed request."""
    reply = turn.reply
    content: list[dict[str, Any]] = []
    if reply.tool is not None:
        tool_input = orjson.Fragment(reply.tool.arguments)
        content.append({"toolUse": {"toolUseId": tool_use_id(turn.seq), "name": reply.tool.name, "input": tool_input}})
    elif reply.text is not None:
        content.append({"text": reply.text})
    head = orjson.dumps({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": _STOP[reply.finish]})
    return head[:-1] + b"," + _usage(turn)


def text_delta(text: str) -> bytes:
    return b'{"contentBlockIndex":0,"delta":{"text":' + orjson.dumps(text) + b"}}"


def tool_input_delta(fragment: str) -> bytes:
    return b'{"contentBlockIndex":0,"delta":{"toolUse":{"input":' + orjson.dumps(fragment) + b"}}}"


class FrameWriter:
    """Frames the events of one ConverseStream; a delta is a ``contentBlockDelta`` payload."""

    __slots__ = ()

    def event(self, delta: bytes) -> bytes:
        return frame(_HEADERS["contentBlockDelta"], delta)

    def events(self, deltas: Sequence[bytes]) -> bytes:
        headers = _HEADERS["contentBlockDelta"]
        return b"".join([frame(headers, d) for d in deltas])

    def broken(self) -> bytes:
        """A frame whose message CRC does not match."""
        good = self.event(text_delta("sim"))
        return good[:-1] + bytes([good[-1] ^ 0xFF])

    def error(self, status: int) -> bytes:
        return stream_exception(status)

    @staticmethod
    def start(turn: Turn) -> bytes:
        out = frame(_HEADERS["messageStart"], b'{"role":"assistant"}')
        tool = turn.reply.tool
        if tool is not None:
            start = {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": tool_use_id(turn.seq), "name": tool.name}}}
            out += frame(_HEADERS["contentBlockStart"], orjson.dumps(start))
        return out

    @staticmethod
    def finish(turn: Turn) -> list[bytes]:
        reply = turn.reply
        out = []
        if reply.tool is not None or reply.text is not None:
            out.append(frame(_HEADERS["contentBlockStop"], b'{"contentBlockIndex":0}'))
        out.append(frame(_HEADERS["messageStop"], b'{"stopReason":"%s"}' % _STOP[reply.finish].encode()))
        out.append(frame(_HEADERS["metadata"], b"{" + _usage(turn)))
        return out


# -- the dialect ------------------------------------------------------------------------------------------------------
def _access_key(auth: str) -> str | None:
    """The access key id in a SigV4 ``Authorization`` header (``Credential=AKID/date/region/service/aws4_request``)."""
    _, found, rest = auth.partition("Credential=")
    return rest.split("/", 1)[0] if found else None


class BedrockDialect:
    """Bedrock Runtime: ``POST /model/{modelId}/converse`` and ``POST /model/{modelId}/converse-stream``.

    Auth: an ``Authorization`` header is always required: SigV4 (not verified; with a sim key, the
    access key id must equal it) or ``Bearer KEY`` (a Bedrock API key; with a sim key, it must equal it).
    """

    __slots__ = ()
    name: Final = "bedrock"
    base_path: Final = ""
    errors: Final = BedrockErrors()
    routes: Final = (
        RouteSpec("POST", "/model/{model}/converse", Route("chat")),
        RouteSpec("POST", "/model/{model}/converse-stream", Route("chat", stream=True)),
    )

    def authorize(self, req: Request, api_key: str | None) -> Response | None:
        auth = req.headers.get("authorization")
        if not auth:
            return error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        supplied = _access_key(auth) if auth.startswith("AWS4-HMAC-SHA256 ") else bearer_token(req)
        if supplied is not None and (api_key is None or supplied == api_key):
            return None
        return error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")

    def headers(self, seq: int) -> list[tuple[str, str]] | None:
        return [("x-amzn-requestid", f"00000000-0000-4000-8000-{seq:012x}")]

    def parse_chat(self, req: Request, route: Route, trigger: str) -> ChatRequest:
        return parse_converse(req.body, route.model or "", route.stream, trigger)

    def completion(self, turn: Turn) -> bytes:
        return converse_response(turn)

    def text_delta(self, text: str) -> bytes:
        return text_delta(text)

    def stream(self, turn: Turn, text: Sequence[bytes]) -> StreamPlan:
        writer = FrameWriter()
        deltas = stream_deltas(turn, text, tool_input_delta)
        return StreamPlan(writer, writer.start(turn), deltas, writer.finish(turn), "application/vnd.amazon.eventstream")

    def info(self, req: Request, route: Route, models: Sequence[str], accept_any: bool, created: float) -> Response:
        return self.errors.not_found(req.method, req.path)
