"""One upstream attempt of each kind, as an operation the attempt loop can run on any deployment.

Each operation builds the wire request with the deployment's adapter, sends
it through the transport (with the call's extra headers, e.g. ``traceparent``),
and turns the answer into a result or a classified
:class:`~stellwerk.errors.UpstreamError`. A successful operation settles its
lease: a complete answer with its usage, a stream with its first token (the
stream settles the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.http.transport import Transport, TransportError, UpstreamResponse
from stellwerk.pipeline.call import Call
from stellwerk.providers import Chunk, StreamDecoder, UpstreamRequest
from stellwerk.providers.openai.completions import CompletionsStreamDecoder, as_chat, completions_request
from stellwerk.providers.responses.native import ResponsesStreamDecoder, native_usage, read_response, responses_request
from stellwerk.usage import Usage, estimate_tokens, usage_from

from .lease import Lease
from .send import classify, read_body, send, transport_error, with_extra

__all__ = ["Answered", "Opened", "UpstreamRequest", "complete", "continuation_body", "embed", "open_stream"]

Clock = Callable[[], float]

CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly from where it stopped: do not repeat any of it, "
    "do not add a preamble, just write the rest."
)


class Answered:
    """A complete answer: the OpenAI-shaped data, the upstream's bytes when unchanged, the usage."""

    __slots__ = ("data", "raw", "usage")

    def __init__(self, data: dict[str, Any], raw: bytes | None, usage: Usage) -> None:
        self.data = data
        self.raw = raw
        self.usage = usage

    async def aclose(self) -> None:
        """A complete answer holds nothing open."""


def _answer_chars(data: dict[str, Any]) -> int:
    chars = 0
    for choice in data.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
    return chars


def _native(call: Call, lease: Lease) -> str | None:
    """``completions`` or ``responses`` when the call is one of those and this deployment serves it as it is."""
    config = lease.deployment.config
    if call.completions is not None and config.supports_completions:
        return "completions"
    if call.responses is not None and config.native_responses:
        return "responses"
    return None


def _wire(call: Call, lease: Lease, native: str | None, body: dict[str, Any], stream: bool) -> UpstreamRequest:
    dep = lease.deployment
    if call.native_only is not None and native != "responses":
        message, param = call.native_only
        raise UpstreamError(Outcome.MOVE_ON, f"only deployments with native_responses can serve it ({message})",
                            reason="unsupported", param=param)
    if native == "completions" and call.completions is not None:
        return completions_request(dep.config, dep.endpoint, call.completions, stream)
    if native == "responses" and call.responses is not None:
        return responses_request(dep.config, dep.endpoint, call.responses, stream)
    return dep.adapter.chat_request(dep.config, dep.endpoint, body, stream)


async def complete(transport: Transport, clock: Clock, call: Call, lease: Lease, timeout: float) -> Answered:
    dep = lease.deployment
    adapter = dep.adapter
    native = _native(call, lease)
    wire = _wire(call, lease, native, call.body, False)
    deadline = clock() + timeout
    # send() and read_body() written out: two coroutines fewer per request on the hot path
    try:
        response = await transport.request(wire.method, wire.url, with_extra(wire.headers, call.upstream_headers()),
                                           wire.body, timeout=timeout,
                                           connect_timeout=min(dep.config.connect_timeout, timeout))
    except TransportError as err:
        raise transport_error(err, timeout) from None
    dep.routing.rate_limit_headers(response.headers)
    remaining = deadline - clock()
    try:
        raw_body = await response.read(timeout=max(0.001, remaining))
    except TransportError as err:
        raise transport_error(err, remaining) from None
    if not 200 <= response.status < 300:
        raise classify(adapter, dep.endpoint.secrets, response.status, response.headers, raw_body)
    reported: Usage | None
    raw: bytes | None
    if native == "responses":  # the response object, forwarded as it came
        data, raw = read_response(raw_body), raw_body
        reported = native_usage(data.get("usage"))
    else:
        data, raw = (as_chat(raw_body), None) if native else adapter.chat_response(dep.config, raw_body)
        reported = usage_from(data.get("usage"))
    usage = reported or Usage(
        estimate_tokens(call.facts.prompt_chars), estimate_tokens(_answer_chars(data)), estimated=True)
    lease.ok(usage)
    return Answered(data, raw, usage)


async def embed(transport: Transport, clock: Clock, call: Call, lease: Lease, timeout: float) -> Answered:
    dep = lease.deployment
    adapter = dep.adapter
    wire = adapter.embeddings_request(dep.config, dep.endpoint, call.body)
    deadline = clock() + timeout
    response = await send(transport, wire, timeout, dep.config.connect_timeout, call.upstream_headers())
    raw_body = await read_body(response, deadline - clock())
    if not 200 <= response.status < 300:
        raise classify(adapter, dep.endpoint.secrets, response.status, response.headers, raw_body)
    data, raw = adapter.embeddings_response(dep.config, raw_body)
    usage = usage_from({"completion_tokens": 0, **(data.get("usage") or {})})
    if usage is None or usage.prompt_tokens == 0:  # some providers (Gemini) report none: estimate, and say so
        tokens = _input_tokens(call.body.get("input"))
        usage = Usage(tokens, 0, estimated=True)
        if raw is None:
            data["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    lease.ok(usage)
    return Answered(data, raw, usage)


def _input_tokens(data: Any) -> int:
    """Tokens of an embeddings input: counted for token ids, estimated from characters for text."""
    items = data if isinstance(data, list) else [data]
    if items and all(isinstance(x, int) for x in items):
        return len(items)
    return sum(len(x) if isinstance(x, list) else estimate_tokens(len(x)) if isinstance(x, str) else 0 for x in items)


class Opened:
    """A stream that has delivered its first chunk(s), not yet handed to anyone. It holds its attempt's lease."""

    __slots__ = ("decoder", "first", "idle_timeout", "lease", "response", "resumable")

    def __init__(self, lease: Lease, response: UpstreamResponse, decoder: StreamDecoder, idle_timeout: float,
                 first: list[Chunk], resumable: bool = True) -> None:
        self.lease = lease
        self.response = response
        self.decoder = decoder
        self.idle_timeout = idle_timeout
        self.first = first
        self.resumable = resumable
        """False for a native Responses stream: its events cannot be continued by another deployment's."""

    async def aclose(self) -> None:
        """Nobody will read it (a hedge that lost a photo finish)."""
        self.response.close()
        self.lease.release()


async def open_stream(transport: Transport, clock: Clock, call: Call, body: dict[str, Any], lease: Lease,
                      timeout: float) -> Opened:
    """Send a streamed chat (``body``: the call's, or a continuation of it) and wait for its first chunk
    (failures until then are failed over)."""
    dep = lease.deployment
    adapter = dep.adapter
    group = call.table.models[dep.model].group
    native = _native(call, lease) if body is call.body else None  # a resumed stream continues as chat
    wire = _wire(call, lease, native, body, True)
    deadline = clock() + timeout
    response = await send(transport, wire, timeout, dep.config.connect_timeout, call.upstream_headers())
    dep.routing.rate_limit_headers(response.headers)
    if not 200 <= response.status < 300:
        data = await read_body(response, deadline - clock())
        raise classify(adapter, dep.endpoint.secrets, response.status, response.headers, data)
    decoder: StreamDecoder = (CompletionsStreamDecoder() if native == "completions" else ResponsesStreamDecoder()
                              if native == "responses" else adapter.stream_decoder(dep.config))
    idle = group.idle_timeout_for(dep)
    first: list[Chunk] = []
    try:
        while not first and not decoder.done:
            remaining = deadline - clock()
            if remaining <= 0:
                raise UpstreamError(Outcome.RETRY_HERE, f"no first chunk within {timeout:g}s", reason="timeout")
            data = await response.next_chunk(min(idle, remaining))
            if not data:
                raise UpstreamError(Outcome.RETRY_HERE, "upstream ended the stream before its first chunk",
                                    reason="read")
            first = decoder.feed(data)
    except TransportError as err:
        response.close()
        raise transport_error(err, timeout) from None
    except BaseException:
        response.close()
        raise
    lease.first_token()
    return Opened(lease, response, decoder, idle, first, resumable=native != "responses")


def continuation_body(body: dict[str, Any], partial: str, mode: str, produced_tokens: int) -> dict[str, Any] | None:
    """The request that continues a broken answer on another deployment (None when ``mode`` is off)."""
    if mode == "off":
        return None
    if not partial:
        return body  # nothing reached the client yet: just ask again
    messages = list(body.get("messages") or [])
    messages.append({"role": "assistant", "content": partial})
    if mode == "instruct":
        messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    resumed = dict(body)
    resumed["messages"] = messages
    for key in ("max_tokens", "max_completion_tokens"):
        limit = body.get(key)
        if isinstance(limit, int) and not isinstance(limit, bool):
            resumed[key] = max(1, limit - produced_tokens)
    return resumed
