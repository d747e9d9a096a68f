"""Shared fixtures: simulated providers, capturing upstreams, gateways and SDK clients.

Everything listens on 127.0.0.1 with ephemeral ports and is closed at teardown.
Helpers the tests import live in ``support.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest

from stellwerk import load_dict
from stellwerk.gateway import Gateway
from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse
from stellwerk.sim import Profile, SimProvider
from support import GUARD, CaptureUpstream, Responder, VirtualTimeouts, default_respond


# -- fixtures ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def tokenizers_loaded() -> None:
    """Load the tokenizers once, before any test: the first count loads them (~0.6 s of CPU, several seconds of wall
    time on a loaded machine) synchronously, inside the event loop of whichever gateway counts first, where a
    client's timeout would measure it."""
    from stellwerk.tokens import count_text_tokens, embedding_texts

    count_text_tokens("warm up")
    embedding_texts([[1]])


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., Awaitable[SimProvider]]]:
    """``await start_sim(**profile_fields, api_key=None, protocol="openai")`` starts a simulated provider."""
    sims: list[SimProvider] = []

    async def start(*, api_key: str | None = None, protocol: str = "openai", clock: Any = None, sleep: Any = None,
                    **fields: Any) -> SimProvider:
        timing = {k: v for k, v in (("clock", clock), ("sleep", sleep)) if v is not None}
        sim = SimProvider(Profile(**fields), protocol=protocol, api_key=api_key, **timing)
        await sim.start("127.0.0.1", 0)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.close(grace=0.5)


@pytest.fixture
async def start_upstream() -> AsyncIterator[Callable[..., Awaitable[CaptureUpstream]]]:
    """``await start_upstream(respond=None)`` starts a :class:`CaptureUpstream`."""
    upstreams: list[CaptureUpstream] = []

    async def start(respond: Responder | None = None) -> CaptureUpstream:
        upstream = CaptureUpstream(respond or default_respond)
        await upstream.start()
        upstreams.append(upstream)
        return upstream

    yield start
    for upstream in upstreams:
        await upstream.close()


@pytest.fixture
async def start_gateway() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """``await start_gateway(config_dict, env=None, **options)`` starts a gateway on an ephemeral port
    (``options``: the :class:`Gateway` constructor's keyword arguments)."""
    gateways: list[Gateway] = []

    async def start(data: dict[str, Any], env: dict[str, str] | None = None, **options: Any) -> Gateway:
        gateway = Gateway(load_dict(data, env=env or {}), **options)
        await gateway.start("127.0.0.1", 0)
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        await gateway.close(grace=1.0)


@pytest.fixture
async def virtual_timeouts() -> AsyncIterator[Callable[..., VirtualTimeouts]]:
    """``virtual_timeouts({base_url: held_count})``: a :class:`VirtualTimeouts` transport (closed at teardown)."""
    transports: list[VirtualTimeouts] = []

    def make(holds: dict[str, Callable[[], int]]) -> VirtualTimeouts:
        transport = VirtualTimeouts(holds)
        transports.append(transport)
        return transport

    yield make
    for transport in transports:
        await transport.close()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[[Gateway], openai.AsyncOpenAI]]:
    """``make_client(gateway)``: the official SDK pointed at the gateway (no SDK retries)."""
    clients: list[openai.AsyncOpenAI] = []

    def make(gateway: Gateway) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="client-key", max_retries=0, timeout=GUARD)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()



@pytest.fixture
async def make_anthropic() -> AsyncIterator[Callable[[Gateway], Any]]:
    """``make_anthropic(gateway)``: the official Anthropic SDK (``AsyncAnthropic``) pointed at the gateway's
    root, where its ``/v1/messages`` front door is (no SDK retries; imported here only, as it loads slowly)."""
    import anthropic

    clients: list[anthropic.AsyncAnthropic] = []

    def make(gateway: Gateway) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key="client-key",
                                          max_retries=0, timeout=GUARD)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


Serve = Callable[..., Awaitable[HTTPServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(handler, **options)``: a bare :class:`HTTPServer` on an ephemeral port (closed at teardown)."""
    servers: list[HTTPServer] = []

    async def start(handler: Callable[[Request], Awaitable[Response | StreamingResponse]], **options: Any) -> HTTPServer:
        server = HTTPServer(handler, **options)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(grace=0.5)
