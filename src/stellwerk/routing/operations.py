"""One upstream attempt of each kind, as an operation the attempt loop can run on any deployment.

Each operation builds the wire request with the deployment's adapter, sends
it through the transport, and turns the answer into a result or a classified
:class:`~stellwerk.errors.UpstreamError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.http.client import ClientResponse, Transport, TransportError
from stellwerk.providers import Chunk, StreamDecoder, UpstreamRequest

from .deployment import Deployment, ModelGroup
from .send import classify, read_body, send, transport_error

__all__ = ["Opened", "UpstreamRequest", "complete", "continuation_body", "embed", "open_stream"]

Clock = Callable[[], float]

CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly from where it stopped: do not repeat any of it, "
    "do not add a preamble, just write the rest."
)


async def complete(transport: Transport, clock: Clock, deployment: Deployment, body: dict[str, Any],
                   timeout: float) -> tuple[dict[str, Any], bytes | None]:
    adapter = deployment.adapter
    wire = adapter.chat_request(deployment.config, deployment.endpoint, body, False)
    deadline = clock() + timeout
    response = await send(transport, wire, timeout, deployment.config.connect_timeout)
    deployment.routing.rate_limit_headers(response.headers)
    data = await read_body(response, deadline - clock())
    if not 200 <= response.status < 300:
        raise classify(adapter, deployment.endpoint.secrets, response.status, response.headers, data)
    return adapter.chat_response(deployment.config, data)


async def embed(transport: Transport, clock: Clock, deployment: Deployment, body: dict[str, Any],
                timeout: float) -> tuple[dict[str, Any], bytes | None]:
    adapter = deployment.adapter
    wire = adapter.embeddings_request(deployment.config, deployment.endpoint, body)
    deadline = clock() + timeout
    response = await send(transport, wire, timeout, deployment.config.connect_timeout)
    data = await read_body(response, deadline - clock())
    if not 200 <= response.status < 300:
        raise classify(adapter, deployment.endpoint.secrets, response.status, response.headers, data)
    return adapter.embeddings_response(deployment.config, data)


class Opened:
    """A stream that has delivered its first chunk(s), not yet handed to anyone."""

    __slots__ = ("decoder", "deployment", "first", "group", "idle_timeout", "response", "ttft")

    def __init__(self, deployment: Deployment, group: ModelGroup, response: ClientResponse, decoder: StreamDecoder,
                 idle_timeout: float, first: list[Chunk], ttft: float) -> None:
        self.deployment = deployment
        self.group = group
        self.response = response
        self.decoder = decoder
        self.idle_timeout = idle_timeout
        self.first = first
        self.ttft = ttft

    async def aclose(self) -> None:
        self.response.close()


async def open_stream(transport: Transport, clock: Clock, group: ModelGroup, deployment: Deployment,
                      body: dict[str, Any], timeout: float) -> Opened:
    """Send a streamed chat and wait for its first chunk (failures until then are failed over)."""
    adapter = deployment.adapter
    started = clock()
    wire = adapter.chat_request(deployment.config, deployment.endpoint, body, True)
    deadline = started + timeout
    response = await send(transport, wire, timeout, deployment.config.connect_timeout)
    deployment.routing.rate_limit_headers(response.headers)
    if not 200 <= response.status < 300:
        data = await read_body(response, deadline - clock())
        raise classify(adapter, deployment.endpoint.secrets, response.status, response.headers, data)
    decoder = adapter.stream_decoder(deployment.config)
    idle = group.idle_timeout_for(deployment)
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
    return Opened(deployment, group, response, decoder, idle, first, clock() - started)


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
