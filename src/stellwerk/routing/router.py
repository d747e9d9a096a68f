"""The Router: a model name in, an answer from one of its deployments out.

    front door / library ─► router.call(...)  a frozen Call on the current routing table
                         ─► router.handle(call)
                              pipeline: [auth] ─► [limits] ─► [cache] ─► [tracing] ─► RouteHandler
                              (route.py: model ─► planner ─► attempt loop ─► fallbacks)
                         ◄─ Reply: a Result, or a ChatStream; RequestFinished when it completes

The Router is the composition of those parts: it validates the config against
the registries, builds routing tables (immutable, versioned), holds the
current one, and swaps it for runtime changes.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stellwerk.config import Config
from stellwerk.configuration import ConfigManager
from stellwerk.errors import StellwerkError
from stellwerk.http.messages import head_pairs
from stellwerk.http.transport import Transport
from stellwerk.outbound import build_client
from stellwerk.pipeline import (
    Call,
    ChatResult,
    EmbeddingsResult,
    Middleware,
    Operation,
    Principal,
    Reply,
    Result,
    compose,
    is_result,
)
from stellwerk.state import Cache, MemoryStateStore, StateStore
from stellwerk.telemetry import Events, Listener, RequestFinished, RequestStarted
from stellwerk.usage import Usage

from . import inspect
from .accounting import ExperimentRecorder
from .edge import build_call
from .probe import HealthProber
from .route import RouteHandler
from .stream import ChatStream
from .table import LiveState, RoutingTable, build_table

if TYPE_CHECKING:
    from stellwerk.cluster import Cluster
    from stellwerk.cluster.limits import SharedLimits
    from stellwerk.compose import Registries
    from stellwerk.keys import Accounts, Keyring

__all__ = ["ChatResult", "EmbeddingsResult", "Result", "Router"]


class Router:
    """Routes OpenAI-format requests to configured deployments.

    >>> async with Router.from_file("stellwerk.yaml") as router:
    ...     result = await router.chat(model="chat", messages=[{"role": "user", "content": "Hi"}])
    ...     print(result.text, result.deployment, result.cost)
    ...     async for chunk in await router.chat_stream(model="chat", messages=[...]):
    ...         ...

    Injected: ``transport`` (the HTTP client), ``registries`` (providers and
    strategies), ``state`` and ``cache`` (the seams for shared state),
    ``middlewares`` by pipeline stage, and ``clock``, ``rng`` and ``sleep``, so
    that resilience behaviour can be tested in virtual time.

    With a ``keyring`` (:class:`~stellwerk.keys.Keyring`), the ``auth`` and
    ``limits`` stages check keys, models, rpm, tpm, max_parallel and budgets
    in process as well: pass ``api_key=`` (or ``principal=``) to the calls.
    """

    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        listeners: Sequence[Listener] = (),
        registries: Registries | None = None,
        state: StateStore | None = None,
        cache: Cache | None = None,
        middlewares: Mapping[str, Sequence[Middleware]] | None = None,
        keyring: Keyring | None = None,
        cluster: Cluster | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        from stellwerk.compose import (  # the composition root sits above routing
            build_cache,
            build_response_cache,
            default_registries,
            validate,
        )

        self.registries = registries if registries is not None else default_registries()
        self.config = validate(config, self.registries)
        self.events = Events(listeners)
        self._experiments = ExperimentRecorder(lambda: self._table)
        self._clock = clock
        self.state: StateStore = state if state is not None else MemoryStateStore(clock)
        self.cache: Cache = cache if cache is not None else build_cache(self.config, clock)
        self._owns_cache = cache is None
        self.response_cache = build_response_cache(self.config, self.cache, clock)
        """The ``cache`` middleware (None when no model caches): ``/admin/cache`` reads and flushes it."""
        if self.response_cache is not None:
            stages = dict(middlewares or {})
            stages["cache"] = [self.response_cache, *stages.get("cache", ())]
            middlewares = stages
        self.cluster = cluster
        """This replica's view of the shared state (``server.redis``): global limits, breakers, notices."""
        shared = self._clustered(cluster, keyring, clock) if cluster is not None else None
        self._live = LiveState(clock=clock, rng=rng if rng is not None else random.Random(), store=self.state,
                               events=self.events, shared=shared)
        self._table = self._built(build_table(self.config, 1, self._live, self.registries))
        self._transport: Transport = transport if transport is not None else build_client(
            self.config, [(d.config, d.endpoint) for d in self._table.deployments.values()])
        self._owns_transport = transport is None
        self.keyring = keyring
        self.accounts: Accounts | None = None
        if keyring is not None:
            middlewares = self._governed(keyring, middlewares or {}, shared)
        self._pipeline = compose(RouteHandler(self._transport, clock=clock, sleep=sleep, events=self.events),
                                 middlewares)
        self.prober = HealthProber(lambda: self._table, self._transport, clock=clock, sleep=sleep, events=self.events)
        self.configuration = ConfigManager(self)
        """Versions, reloads, API edits and rollbacks of this router's configuration."""

    def _clustered(self, cluster: Cluster, keyring: Keyring | None, clock: Callable[[], float]) -> SharedLimits:
        """Limits, breakers and key changes shared with the other replicas through ``cluster``."""
        from stellwerk.cluster import KeyNotices, SharedHealth, SharedLimits
        from stellwerk.telemetry import BreakerChanged

        self.events.subscribe(SharedHealth(cluster, lambda: self._table, clock), BreakerChanged)
        if keyring is not None:
            KeyNotices(cluster, keyring)
        cluster.config_version = lambda: self._table.version
        return SharedLimits(cluster)

    def _governed(self, keyring: Keyring, middlewares: Mapping[str, Sequence[Middleware]],
                  shared: SharedLimits | None) -> dict[str, Sequence[Middleware]]:
        """``middlewares`` with key auth first in ``auth`` and limits first in ``limits``."""
        from stellwerk.keys import Accounts
        from stellwerk.pipeline.auth import Auth
        from stellwerk.pipeline.limits import Limits

        self.accounts = Accounts(self._clock, wall=keyring.wall, reserve_tokens=self.config.server.reserve_output_tokens)
        stages = dict(middlewares)
        stages["auth"] = [Auth(keyring), *middlewares.get("auth", ())]
        stages["limits"] = [Limits(keyring, self.accounts, shared), *middlewares.get("limits", ())]
        return stages

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Router:
        """A router for the config file at ``path``; ``options`` are the constructor's keyword arguments."""
        from stellwerk.compose import load_file

        return cls(load_file(Path(path), registries=options.get("registries")), **options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], env: Mapping[str, str] | None = None, **options: Any) -> Router:
        from stellwerk.compose import load_dict

        return cls(load_dict(dict(data), env, registries=options.get("registries")), **options)

    @property
    def table(self) -> RoutingTable:
        """The current routing table (a call keeps the one it started on)."""
        return self._table

    @property
    def models(self) -> list[str]:
        return list(self._table.models)

    def start(self) -> None:
        """Start background work (active health checks of models that configure them)."""
        self.prober.start()

    async def aclose(self) -> None:
        self.events.flush()  # the batch listeners get the last records
        await self.prober.stop()
        if self.response_cache is not None:
            await self.response_cache.settle()
        if self._owns_cache:
            await self.cache.close()
        if self._owns_transport:
            await self._transport.close()

    async def __aenter__(self) -> Router:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the edge: a call, and the pipeline ----------------------------------------
    def call(self, operation: Operation, body: Mapping[str, Any], *, request_id: str | None = None,
             timeout: float | None = None, headers: Mapping[str, str] | None = None,
             principal: Principal | None = None) -> Call:
        """Validate a request (``InvalidRequestError`` naming the parameter) and build its :class:`Call` on the
        current routing table (see :func:`~.edge.build_call`)."""
        return build_call(self._table, self._clock(), operation, body, request_id=request_id, timeout=timeout,
                          headers=headers, principal=principal)

    async def handle(self, call: Call) -> Reply:
        """Run a call through the pipeline. Every call ends in one :class:`RequestFinished` event."""
        events = self.events
        if RequestStarted in events.heard:
            events.emit(RequestStarted(request_id=call.request_id, operation=call.operation.value, model=call.model,
                                       stream=call.stream))
        try:
            reply = await self._pipeline(call)
        except StellwerkError as err:
            self._failed(call, err.status, err)
            raise
        except asyncio.CancelledError:
            self._failed(call, 499, None)  # the client went away
            raise
        except Exception:
            self._failed(call, 500, None)  # a bug: the gateway answers 500
            raise
        if is_result(reply) and reply.record is None:  # a middleware's own answer
            reply.record = call.finished(self._clock(), status=200, deployment=reply.deployment, attempts=(),
                                         usage=reply.usage, cost=reply.cost, route=reply.route)
        if RequestFinished in events.heard:
            if is_result(reply) and reply.record is not None:
                events.emit(reply.record)  # complete already (the common case: no hook object needed)
            else:
                reply.on_complete(events.emit)
        return reply

    def _failed(self, call: Call, status: int, err: StellwerkError | None) -> None:
        principal = call.principal
        if principal is None and err is not None and err.key_id is not None:  # the auth stage named the caller
            principal = Principal(key_id=err.key_id, team=err.team)
        self.events.emit(call.finished(self._clock(), status=status, deployment=None,
                                       attempts=tuple(err.attempts) if err is not None else (), usage=Usage(),
                                       cost=0.0, principal=principal, limited=err.limited if err is not None else ""))

    # -- the library API: the request's fields as keyword arguments (as the OpenAI SDK takes them) ----------
    async def chat(self, body: Mapping[str, Any] | None = None, /, *, request_id: str | None = None,
                   timeout: float | None = None, headers: Mapping[str, str] | None = None,
                   api_key: str | None = None, principal: Principal | None = None, **fields: Any) -> ChatResult:
        """A complete chat answer. Pass the OpenAI request as a dict, or its fields as keyword arguments.

        With a keyring, ``api_key`` (a gateway key) or ``principal`` names the caller whose limits apply.
        """
        call = self.call(Operation.CHAT, {**(body or {}), **fields, "stream": False}, request_id=request_id,
                         timeout=timeout, headers=_with_key(headers, api_key), principal=principal)
        reply = await self.handle(call)
        assert isinstance(reply, ChatResult)
        _unfold(reply)
        return reply

    async def chat_stream(self, body: Mapping[str, Any] | None = None, /, *, request_id: str | None = None,
                          timeout: float | None = None, headers: Mapping[str, str] | None = None,
                          api_key: str | None = None, principal: Principal | None = None,
                          **fields: Any) -> ChatStream:
        """A streamed chat answer, returned once its first chunk has arrived.

        Failures before that point fail over transparently; failures after it
        are continued on another deployment (see :class:`ChatStream`).
        """
        call = self.call(Operation.CHAT, {**(body or {}), **fields, "stream": True}, request_id=request_id,
                         timeout=timeout, headers=_with_key(headers, api_key), principal=principal)
        reply = await self.handle(call)
        assert isinstance(reply, ChatStream)
        _unfold(reply)
        return reply

    async def embeddings(self, body: Mapping[str, Any] | None = None, /, *, request_id: str | None = None,
                         timeout: float | None = None, headers: Mapping[str, str] | None = None,
                         api_key: str | None = None, principal: Principal | None = None,
                         **fields: Any) -> EmbeddingsResult:
        call = self.call(Operation.EMBEDDINGS, {**(body or {}), **fields}, request_id=request_id, timeout=timeout,
                         headers=_with_key(headers, api_key), principal=principal)
        reply = await self.handle(call)
        assert isinstance(reply, EmbeddingsResult)
        _unfold(reply)
        return reply

    # -- inspection -----------------------------------------------------------------
    def dry_run(self, model: str, body: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Where would this request go, and why? (``GET /admin/route``; nothing is sent upstream.)"""
        request = {**(body or {"messages": [{"role": "user", "content": "Hello"}]}), "model": model}
        return inspect.dry_run(self.call(Operation.CHAT, request, headers=headers))

    def health(self) -> dict[str, Any]:
        """Health of every deployment (``GET /admin/health``)."""
        return inspect.health(self._table, self._clock)

    def experiments(self) -> dict[str, Any]:
        """Per-variant figures of every A/B model (``GET /admin/experiments``)."""
        return inspect.experiments(self._table)

    # -- runtime changes: each is a version (router.configuration: set_weight, set_enabled, ...) ----------
    def install(self, config: Config, number: int | None = None) -> RoutingTable:
        """Validate ``config`` whole, build the next routing table on the live state, and make it current (one
        assignment). Use :attr:`configuration` for changes: it records each as a version."""
        from stellwerk.compose import validate

        validate(config, self.registries)
        number = self._table.version + 1 if number is None else max(number, self._table.version + 1)
        self._table = self._built(build_table(config, number, self._live, self.registries))
        return self._table

    def _built(self, table: RoutingTable) -> RoutingTable:
        """A new table: A/B accounting listens from the first table that runs an experiment on."""
        if table.experiments and not self._experiments.subscribed:
            self.events.subscribe(self._experiments, RequestFinished)
            self._experiments.subscribed = True
        return table


def _unfold(reply: Reply) -> None:
    """Move the headers middlewares rendered as wire text (``x-ratelimit-*``) into ``reply.headers``, where a
    library caller reads them as pairs."""
    if reply.head:
        reply.headers = (*reply.headers, *head_pairs(reply.head))
        reply.head = ""


def _with_key(headers: Mapping[str, str] | None, api_key: str | None) -> Mapping[str, str] | None:
    """The library's ``api_key`` as the header the auth stage reads."""
    if api_key is None:
        return headers
    return {**(headers or {}), "authorization": f"Bearer {api_key}"}
