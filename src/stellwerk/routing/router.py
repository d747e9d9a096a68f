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

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from stellwerk.config import Config, load_dict, load_file
from stellwerk.errors import (
    AllAttemptsFailedError,
    Attempt,
    ContentPolicyError,
    ContextWindowExceededError,
    ModelNotFoundError,
    Outcome,
    StellwerkError,
    UpstreamError,
)
from stellwerk.events import Listener, RequestRecord, emit
from stellwerk.http.client import HTTPClient, Transport
from stellwerk.tokens import count_prompt_tokens
from stellwerk.usage import Usage, estimate_tokens, prompt_chars, usage_from
from stellwerk.validate import validate_chat, validate_embeddings

from . import operations
from .attempts import AttemptLoop, ModelFailed, RequestContext
from .deployment import Deployment, ModelGroup
from .operations import Opened, continuation_body
from .probe import HealthProber
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
    if statuses == {429}:
        return 429
    if reasons == {"timeout"}:
        return 504
    if reasons <= {"connect"}:
        return 503
    return 502


Op = Callable[[Deployment, float], Awaitable[T]]

MAX_RESUMES = 3
"""A stream that broke off is continued elsewhere at most this many times."""


class Router:
    """Routes OpenAI-format requests to configured deployments.

    >>> async with Router.from_file("stellwerk.yaml") as router:
    ...     result = await router.chat(model="chat", messages=[{"role": "user", "content": "Hi"}])
    ...     print(result.text, result.deployment, result.cost)
    ...     async for chunk in await router.chat_stream(model="chat", messages=[...]):
    ...         ...

    ``clock``, ``rng`` and ``sleep`` are injectable so that resilience behaviour
    can be tested in virtual time.
    """

    def __init__(
        self,
        config: Config,
        *,
        transport: Transport | None = None,
        listeners: Sequence[Listener] = (),
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._groups: dict[str, ModelGroup] = {m.name: ModelGroup(m, clock, self._rng) for m in config.models}
        self._needs_tokens = {name: any(d.config.context_window is not None for d in g.deployments)
                              for name, g in self._groups.items()}
        self._transport: Transport = transport if transport is not None else HTTPClient()
        self._owns_transport = transport is None
        self._listeners = tuple(listeners)
        self.prober = HealthProber(list(self._groups.values()), self._transport, clock)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Router:
        return cls(load_file(Path(path)), **options)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], env: Mapping[str, str] | None = None, **options: Any) -> Router:
        return cls(load_dict(dict(data), env), **options)

    @property
    def models(self) -> list[str]:
        return list(self._groups)

    @property
    def groups(self) -> Mapping[str, ModelGroup]:
        return self._groups

    def add_listener(self, listener: Listener) -> None:
        self._listeners = (*self._listeners, listener)

    def group(self, model: str) -> ModelGroup:
        group = self._groups.get(model)
        if group is None:
            raise ModelNotFoundError(model, list(self._groups))
        return group

    def start(self) -> None:
        """Start background work (active health checks of models that configure them)."""
        self.prober.start()

    async def aclose(self) -> None:
        await self.prober.stop()
        if self._owns_transport:
            await self._transport.close()

    async def __aenter__(self) -> Router:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- routing: a model, then its fallbacks -------------------------------------
    def _order(self, group: ModelGroup) -> Sequence[Deployment]:
        """The strategy's order of the model's deployments (``failover``: as listed)."""
        return group.deployments

    def _context(self, request_id: str | None, group: ModelGroup, timeout: float | None) -> RequestContext:
        started = self._clock()
        limit = group.config.deadline if timeout is None else min(timeout, group.config.deadline)
        return RequestContext(request_id or _new_request_id(), started, started + limit)

    async def _route(
        self,
        model: str,
        ctx: RequestContext,
        make_op: Callable[[ModelGroup], Op[T]],
        body: dict[str, Any],
        *,
        stream: bool = False,
        tried: Mapping[str, int] | None = None,
    ) -> tuple[T, Deployment]:
        queue = [model]
        visited: set[str] = set()
        kind = "unavailable"
        while queue:
            name = queue.pop(0)
            if name in visited:
                continue
            visited.add(name)
            group = self.group(name)
            if self._needs_tokens[name] and ctx.prompt_tokens is None:
                output = body.get("max_completion_tokens") or body.get("max_tokens") or 0
                ctx.prompt_tokens = count_prompt_tokens(body) + (output if isinstance(output, int) else 0)
            order = self._order(group)
            loop: AttemptLoop[T] = AttemptLoop(group, order, make_op(group), ctx, clock=self._clock,
                                               sleep=self._sleep, stream=stream)
            if tried:
                loop.tries.update({k: v for k, v in tried.items() if k in {d.id for d in group.deployments}})
            try:
                return await loop.run()
            except ModelFailed as failed:
                kind = failed.kind
                cfg = group.config
                targets = {"context": cfg.context_window_fallbacks, "content": cfg.content_policy_fallbacks}.get(
                    kind, cfg.fallbacks)
                fresh = [t for t in targets if t not in visited]
                if fresh:
                    ctx.notes.append(f"{name}: {kind}, falling back to {', '.join(fresh)}")
                queue[0:0] = fresh
        if kind == "context":
            size = f" (~{ctx.prompt_tokens} tokens)" if ctx.prompt_tokens else ""
            raise ContextWindowExceededError(
                f"The prompt{size} is too long for every deployment of model '{model}' and its fallbacks.", ctx.failed)
        if kind == "content":
            tried_text = "; ".join(a.describe() for a in ctx.failed)
            raise ContentPolicyError(f"The request was refused by the provider's content policy. Tried: {tried_text}",
                                     ctx.failed)
        raise AllAttemptsFailedError(model, ctx.failed, _final_status(ctx.failed))

    def _fail(self, operation: str, model: str, ctx: RequestContext, status: int, stream: bool = False) -> None:
        emit(self._listeners, RequestRecord(
            request_id=ctx.request_id, operation=operation, model=model, deployment=None, status=status,
            attempts=tuple(ctx.failed), latency=self._clock() - ctx.started, ttft=None, stream=stream, usage=Usage(),
            cost=0.0,
        ))

    async def _guarded(self, operation: str, model: str, ctx: RequestContext, run: Awaitable[T], stream: bool) -> T:
        try:
            return await run
        except StellwerkError as err:
            self._fail(operation, model, ctx, err.status, stream)
            raise
        except BaseException:
            self._fail(operation, model, ctx, 499, stream)
            raise

    # -- chat, complete answers ---------------------------------------------
    async def chat(self, body: dict[str, Any] | None = None, /, *, request_id: str | None = None,
                   validated: bool = False, timeout: float | None = None, **params: Any) -> ChatResult:
        """A complete chat answer. Pass the OpenAI request as a dict or as keyword arguments.

        ``timeout`` lowers the model's ``deadline`` for this request.
        """
        request = {**(body or {}), **params}
        if not validated:
            validate_chat(request)
        request.pop("stream", None)
        request.pop("stream_options", None)
        group = self.group(request["model"])
        ctx = self._context(request_id, group, timeout)
        transport, clock = self._transport, self._clock

        def make_op(_: ModelGroup) -> Op[tuple[dict[str, Any], bytes | None]]:
            async def op(deployment: Deployment, attempt_timeout: float) -> tuple[dict[str, Any], bytes | None]:
                return await operations.complete(transport, clock, deployment, request, attempt_timeout)
            return op

        (data, raw), deployment = await self._guarded(
            "chat", group.name, ctx, self._route(group.name, ctx, make_op, request), False)
        usage = usage_from(data.get("usage")) or self._estimate(request, data)
        cost = usage.cost(deployment.config.price)
        latency = self._clock() - ctx.started
        emit(self._listeners, RequestRecord(
            request_id=ctx.request_id, operation="chat", model=group.name, deployment=deployment.id, status=200,
            attempts=tuple(ctx.failed), latency=latency, ttft=None, stream=False, usage=usage, cost=cost,
        ))
        return ChatResult(data, raw, group.name, deployment.id, ctx.attempts, usage, cost, latency, ctx.request_id)

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
                          validated: bool = False, timeout: float | None = None, **params: Any) -> ChatStream:
        """A streamed chat answer, returned once its first chunk has arrived.

        Failures before that point fail over transparently; failures after it
        are continued on another deployment (see :class:`ChatStream`).
        """
        request = {**(body or {}), **params, "stream": True}
        if not validated:
            validate_chat(request)
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        group = self.group(request["model"])
        ctx = self._context(request_id, group, timeout)
        transport, clock = self._transport, self._clock

        def make_op(g: ModelGroup) -> Op[Opened]:
            async def op(deployment: Deployment, attempt_timeout: float) -> Opened:
                return await operations.open_stream(transport, clock, g, deployment, request, attempt_timeout)
            return op

        opened, _ = await self._guarded(
            "chat", group.name, ctx, self._route(group.name, ctx, make_op, request, stream=True), True)

        broken_counts: dict[str, int] = {}

        async def resume(partial: str, produced: int, broken: str) -> Opened | None:
            broken_counts[broken] = broken_counts.get(broken, 0) + 1
            if not group.config.resume_streams or sum(broken_counts.values()) > MAX_RESUMES:
                return None
            if not group.budget.try_withdraw():
                ctx.notes.append("retry budget spent: stream not resumed")
                return None

            def make_resume_op(g: ModelGroup) -> Op[Opened]:
                async def op(deployment: Deployment, attempt_timeout: float) -> Opened:
                    resumed = continuation_body(request, partial, deployment.resume, produced)
                    if resumed is None:
                        raise UpstreamError(Outcome.MOVE_ON, "this deployment does not resume streams", reason="skip")
                    return await operations.open_stream(transport, clock, g, deployment, resumed, attempt_timeout)
                return op

            ctx.notes.append(f"stream from {broken} broke off after {len(partial)} characters; resuming")
            try:
                resumed_stream, _ = await self._route(group.name, ctx, make_resume_op, request, stream=True,
                                                      tried=broken_counts)
            except StellwerkError:
                return None
            return resumed_stream

        return ChatStream(
            model=group.name, opened=opened, include_usage=include_usage, failed=ctx.failed, attempts=ctx.attempts,
            started=ctx.started, request_id=ctx.request_id, prompt_chars=prompt_chars(request),
            listeners=self._listeners, clock=clock, resume=resume,
        )

    # -- embeddings ---------------------------------------------------------
    async def embeddings(self, body: dict[str, Any] | None = None, /, *, request_id: str | None = None,
                         validated: bool = False, timeout: float | None = None, **params: Any) -> EmbeddingsResult:
        request = {**(body or {}), **params}
        if not validated:
            validate_embeddings(request)
        group = self.group(request["model"])
        ctx = self._context(request_id, group, timeout)
        transport, clock = self._transport, self._clock

        def make_op(_: ModelGroup) -> Op[tuple[dict[str, Any], bytes | None]]:
            async def op(deployment: Deployment, attempt_timeout: float) -> tuple[dict[str, Any], bytes | None]:
                return await operations.embed(transport, clock, deployment, request, attempt_timeout)
            return op

        (data, raw), deployment = await self._guarded(
            "embeddings", group.name, ctx, self._route(group.name, ctx, make_op, request), False)
        usage = usage_from({"completion_tokens": 0, **(data.get("usage") or {})}) or Usage(estimated=True)
        cost = usage.cost(deployment.config.price)
        latency = self._clock() - ctx.started
        emit(self._listeners, RequestRecord(
            request_id=ctx.request_id, operation="embeddings", model=group.name, deployment=deployment.id, status=200,
            attempts=tuple(ctx.failed), latency=latency, ttft=None, stream=False, usage=usage, cost=cost,
        ))
        return EmbeddingsResult(data, raw, group.name, deployment.id, ctx.attempts, usage, cost, latency,
                                ctx.request_id)

    # -- state --------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Health of every deployment (for ``GET /admin/health``)."""
        now = self._clock()
        models: dict[str, Any] = {}
        for name, group in self._groups.items():
            deployments = {}
            for dep in group.deployments:
                h = dep.health
                deployments[dep.id] = {
                    "provider": dep.config.provider,
                    "model": dep.config.model,
                    "available": dep.breaker.available(),
                    "breaker": dep.breaker.snapshot(),
                    "in_flight": dep.in_flight,
                    "max_in_flight": dep.config.max_in_flight,
                    "successes": h.successes,
                    "failures": h.failures,
                    "latency_ewma_ms": None if h.latency is None else round(h.latency * 1000, 3),
                    "ttft_ewma_ms": None if h.ttft is None else round(h.ttft * 1000, 3),
                    "last_error": h.last_error,
                    "seconds_since_success": None if h.successes == 0 else round(now - h.last_success, 3),
                    "probe": None if h.probe_at is None else {
                        "ok": h.probe_ok, "seconds_ago": round(now - h.probe_at, 3), "error": h.probe_error},
                    "retry_budget": dep.budget.snapshot(),
                }
            healthy = sum(1 for d in group.deployments if d.breaker.available())
            models[name] = {
                "healthy": healthy,
                "deployments_total": len(group.deployments),
                "panic": healthy < group.config.panic_threshold * len(group.deployments),
                "retry_budget": group.budget.snapshot(),
                "deployments": deployments,
            }
        return {"models": models}
