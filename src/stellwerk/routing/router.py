"""The Router: a model name in, an answer from one of its deployments out.

    request ─► validate ─► model group ─► strategy orders deployments
            ─► attempt loop: for each deployment, up to 1 + retries attempts
                   adapter builds wire request ─► transport ─► adapter parses / classifies
            ─► answer (with deployment, attempts, usage, cost) or one error listing every attempt

The attempt loop is written as a plain loop: a client error is returned at
once; a transient failure is retried on the same deployment up to ``retries``
times, then the next deployment is tried; when every deployment failed, one
:class:`~stellwerk.errors.AllAttemptsFailedError` lists each attempt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from stellwerk.config import Config, load_dict, load_file
from stellwerk.errors import AllAttemptsFailedError, Attempt, ModelNotFoundError, Outcome, UpstreamError
from stellwerk.events import Listener, RequestRecord, emit
from stellwerk.http.client import HTTPClient, Transport, TransportError
from stellwerk.providers.redact import redact
from stellwerk.usage import Usage, estimate_tokens, prompt_chars, usage_from
from stellwerk.validate import validate_chat, validate_embeddings

from .deployment import Deployment, ModelGroup
from .send import read_body, send, transport_error
from .strategies import get_strategy
from .stream import ChatStream

__all__ = ["ChatResult", "EmbeddingsResult", "Router"]

T = TypeVar("T")


class ChatResult(msgspec.Struct):
    """A complete chat answer. ``data`` is the OpenAI ``chat.completion`` object."""

    data: dict[str, Any]
    raw: bytes | None
    """The upstream's bytes when ``data`` is unchanged from them (forwarded as is by the gateway)."""
    model: str
    deployment: str
    attempts: int
    usage: Usage
    cost: float
    latency: float
    request_id: str

    @property
    def text(self) -> str | None:
        """The first choice's message content."""
        choices = self.data.get("choices") or [{}]
        message = choices[0].get("message") or {}
        content = message.get("content")
        return content if isinstance(content, str) else None


class EmbeddingsResult(msgspec.Struct):
    data: dict[str, Any]
    raw: bytes | None
    model: str
    deployment: str
    attempts: int
    usage: Usage
    cost: float
    latency: float
    request_id: str


def _new_request_id() -> str:
    return os.urandom(12).hex()


def _final_status(attempts: Sequence[Attempt]) -> int:
    """The status of an answer when every attempt failed: the most telling common cause."""
    if not attempts:
        return 503
    statuses = {a.status for a in attempts}
    reasons = {a.reason for a in attempts}
    outcomes = {a.outcome for a in attempts}
    if outcomes == {Outcome.CONTEXT_TOO_LONG} or outcomes == {Outcome.CONTENT_POLICY}:
        return 400
    if statuses == {429}:
        return 429
    if reasons == {"timeout"}:
        return 504
    if reasons <= {"connect"}:
        return 503
    return 502


class Router:
    """Routes OpenAI-format requests to configured deployments.

    >>> async with Router.from_file("stellwerk.yaml") as router:
    ...     result = await router.chat(model="chat", messages=[{"role": "user", "content": "Hi"}])
    ...     print(result.text, result.deployment, result.cost)
    ...     async for chunk in await router.chat_stream(model="chat", messages=[...]):
    ...         ...
    """

    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        listeners: Sequence[Listener] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._groups: dict[str, ModelGroup] = {m.name: ModelGroup(m) for m in config.models}
        self._strategies = {name: get_strategy(g.strategy_name) for name, g in self._groups.items()}
        self._transport: Transport = transport if transport is not None else HTTPClient()
        self._owns_transport = transport is None
        self._listeners = tuple(listeners)
        self._clock = clock

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Router:
        return cls(load_file(Path(path)), **options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], env: Mapping[str, str] | None = None, **options: Any) -> Router:
        return cls(load_dict(dict(data), env), **options)

    @property
    def models(self) -> list[str]:
        return list(self._groups)

    def add_listener(self, listener: Listener) -> None:
        self._listeners = (*self._listeners, listener)

    def group(self, model: str) -> ModelGroup:
        group = self._groups.get(model)
        if group is None:
            raise ModelNotFoundError(model, list(self._groups))
        return group

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the attempt loop ---------------------------------------------------
    async def _attempts(
        self,
        group: ModelGroup,
        operation: Callable[[Deployment, float], Awaitable[T]],
        failed: list[Attempt],
    ) -> tuple[T, Deployment]:
        retries = group.config.retries
        for deployment in self._strategies[group.name](group.deployments):
            assert isinstance(deployment, Deployment)
            timeout = group.timeout_for(deployment)
            for attempt in range(retries + 1):
                deployment.in_flight += 1
                try:
                    return await operation(deployment, timeout), deployment
                except UpstreamError as err:
                    err.message = redact(err.message, deployment.endpoint.secrets)
                    failed.append(Attempt(deployment.id, err.outcome, err.message, err.upstream_status, err.reason))
                    if err.outcome is Outcome.CLIENT_ERROR:
                        raise
                    if err.outcome is not Outcome.RETRY_HERE or attempt == retries:
                        break
                finally:
                    deployment.in_flight -= 1
        raise AllAttemptsFailedError(group.name, failed, _final_status(failed))

    def _fail(self, operation: str, model: str, request_id: str, started: float, failed: list[Attempt],
              status: int, stream: bool = False) -> None:
        emit(self._listeners, RequestRecord(
            request_id=request_id, operation=operation, model=model, deployment=None, status=status,
            attempts=tuple(failed), latency=self._clock() - started, ttft=None, stream=stream, usage=Usage(), cost=0.0,
        ))

    # -- chat, complete answers ---------------------------------------------
    async def chat(self, body: dict[str, Any] | None = None, /, *, request_id: str | None = None,
                   validated: bool = False, **params: Any) -> ChatResult:
        """A complete chat answer. Pass the OpenAI request as a dict or as keyword arguments."""
        request = {**(body or {}), **params}
        if not validated:
            validate_chat(request)
        request.pop("stream", None)
        request.pop("stream_options", None)
        group = self.group(request["model"])
        rid = request_id or _new_request_id()
        started = self._clock()
        failed: list[Attempt] = []

        async def complete(deployment: Deployment, timeout: float) -> tuple[dict[str, Any], bytes | None]:
            adapter = deployment.adapter
            wire = adapter.chat_request(deployment.config, deployment.endpoint, request, False)
            deadline = self._clock() + timeout
            response = await send(self._transport, wire, timeout, deployment.config.connect_timeout)
            data = await read_body(response, deadline - self._clock())
            if not 200 <= response.status < 300:
                raise adapter.classify(response.status, response.headers, data)
            return adapter.chat_response(deployment.config, data)

        try:
            (data, raw), deployment = await self._attempts(group, complete, failed)
        except (UpstreamError, AllAttemptsFailedError) as err:
            self._fail("chat", group.name, rid, started, failed, err.status)
            raise
        except BaseException:
            self._fail("chat", group.name, rid, started, failed, 499)
            raise
        usage = usage_from(data.get("usage")) or self._estimate(request, data)
        cost = usage.cost(deployment.config.price)
        latency = self._clock() - started
        emit(self._listeners, RequestRecord(
            request_id=rid, operation="chat", model=group.name, deployment=deployment.id, status=200,
            attempts=tuple(failed), latency=latency, ttft=None, stream=False, usage=usage, cost=cost,
        ))
        return ChatResult(data, raw, group.name, deployment.id, len(failed) + 1, usage, cost, latency, rid)

    @staticmethod
    def _estimate(request: dict[str, Any], data: dict[str, Any]) -> Usage:
        chars = 0
        for choice in data.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                chars += len(content)
        return Usage(estimate_tokens(prompt_chars(request)), estimate_tokens(chars), estimated=True)

    # -- chat, streamed -----------------------------------------------------
    async def chat_stream(self, body: dict[str, Any] | None = None, /, *, request_id: str | None = None,
                          validated: bool = False, **params: Any) -> ChatStream:
        """A streamed chat answer, returned once its first chunk has arrived.

        Failures before that point fail over to the next attempt transparently.
        """
        request = {**(body or {}), **params}
        if not validated:
            validate_chat(request)
        request["stream"] = True
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        group = self.group(request["model"])
        rid = request_id or _new_request_id()
        started = self._clock()
        failed: list[Attempt] = []
        clock = self._clock

        async def open_stream(deployment: Deployment, timeout: float) -> ChatStream:
            adapter = deployment.adapter
            wire = adapter.chat_request(deployment.config, deployment.endpoint, request, True)
            deadline = clock() + timeout
            response = await send(self._transport, wire, timeout, deployment.config.connect_timeout)
            if not 200 <= response.status < 300:
                data = await read_body(response, deadline - clock())
                raise adapter.classify(response.status, response.headers, data)
            decoder = adapter.stream_decoder(deployment.config)
            upstream = response.iter_chunks(idle_timeout=timeout)
            first: list[Any] = []
            try:
                while not first and not decoder.done:
                    try:
                        data = await anext(upstream)
                    except StopAsyncIteration:
                        raise UpstreamError(Outcome.RETRY_HERE, "upstream ended the stream before its first chunk",
                                            reason="read") from None
                    first = decoder.feed(data)
            except TransportError as err:
                response.close()
                raise transport_error(err, timeout) from None
            except BaseException:
                response.close()
                raise
            return ChatStream(
                model=group.name, deployment=deployment, response=response, decoder=decoder, upstream=upstream,
                first=first, include_usage=include_usage, failed=failed, started=started, ttft=clock() - started,
                request_id=rid, prompt_chars=prompt_chars(request), listeners=self._listeners, clock=clock,
            )

        try:
            stream, _ = await self._attempts(group, open_stream, failed)
        except (UpstreamError, AllAttemptsFailedError) as err:
            self._fail("chat", group.name, rid, started, failed, err.status, stream=True)
            raise
        except BaseException:
            self._fail("chat", group.name, rid, started, failed, 499, stream=True)
            raise
        return stream

    # -- embeddings ---------------------------------------------------------
    async def embeddings(self, body: dict[str, Any] | None = None, /, *, request_id: str | None = None,
                         validated: bool = False, **params: Any) -> EmbeddingsResult:
        request = {**(body or {}), **params}
        if not validated:
            validate_embeddings(request)
        group = self.group(request["model"])
        rid = request_id or _new_request_id()
        started = self._clock()
        failed: list[Attempt] = []

        async def embed(deployment: Deployment, timeout: float) -> tuple[dict[str, Any], bytes | None]:
            adapter = deployment.adapter
            wire = adapter.embeddings_request(deployment.config, deployment.endpoint, request)
            deadline = self._clock() + timeout
            response = await send(self._transport, wire, timeout, deployment.config.connect_timeout)
            data = await read_body(response, deadline - self._clock())
            if not 200 <= response.status < 300:
                raise adapter.classify(response.status, response.headers, data)
            return adapter.embeddings_response(deployment.config, data)

        try:
            (data, raw), deployment = await self._attempts(group, embed, failed)
        except (UpstreamError, AllAttemptsFailedError) as err:
            self._fail("embeddings", group.name, rid, started, failed, err.status)
            raise
        except BaseException:
            self._fail("embeddings", group.name, rid, started, failed, 499)
            raise
        usage = usage_from({"completion_tokens": 0, **(data.get("usage") or {})}) or Usage(estimated=True)
        cost = usage.cost(deployment.config.price)
        latency = self._clock() - started
        emit(self._listeners, RequestRecord(
            request_id=rid, operation="embeddings", model=group.name, deployment=deployment.id, status=200,
            attempts=tuple(failed), latency=latency, ttft=None, stream=False, usage=usage, cost=cost,
        ))
        return EmbeddingsResult(data, raw, group.name, deployment.id, len(failed) + 1, usage, cost, latency, rid)
