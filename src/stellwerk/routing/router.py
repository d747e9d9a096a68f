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
import base64
import os
import random
import struct
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import orjson

from stellwerk.config import Config, load_dict, load_file
from stellwerk.errors import (
    AllAttemptsFailedError,
    Attempt,
    ContentPolicyError,
    ContextWindowExceededError,
    ModelNotFoundError,
    StellwerkError,
)
from stellwerk.events import Listener, RequestRecord, emit
from stellwerk.http.client import Transport
from stellwerk.outbound import build_client
from stellwerk.tokens import count_prompt_tokens
from stellwerk.usage import Usage, estimate_tokens, prompt_chars, usage_from
from stellwerk.validate import validate_chat, validate_embeddings

from . import operations
from .attempts import AttemptLoop, ModelFailed, RequestContext
from .deployment import Deployment, ModelGroup
from .operations import Opened, continuation_body
from .planner import Decision, Planner, request_facts
from .probe import HealthProber
from .stream import ChatStream

__all__ = ["ChatResult", "EmbeddingsResult", "Result", "Router"]

T = TypeVar("T")
R = TypeVar("R", bound="Result")


class Result(msgspec.Struct):
    """A complete answer: the OpenAI-shaped ``data``, and how it was obtained."""

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
    route: str = ""
    """Why this deployment answered (the ``x-stellwerk-route`` header)."""

    @property
    def body(self) -> bytes:
        """The answer as JSON bytes."""
        return self.raw if self.raw is not None else orjson.dumps(self.data)


class ChatResult(Result):
    """A complete chat answer. ``data`` is the OpenAI ``chat.completion`` object."""

    @property
    def text(self) -> str | None:
        """The first choice's message content."""
        choices = self.data.get("choices") or [{}]
        message = choices[0].get("message") or {}
        content = message.get("content")
        return content if isinstance(content, str) else None


class EmbeddingsResult(Result):
    """Embeddings. ``data`` is the OpenAI embeddings list object."""


def _new_request_id() -> str:
    return os.urandom(12).hex()


def _float_vectors_to_base64(data: dict[str, Any]) -> bool:
    """Providers without base64 output answer floats; the client asked for base64 (little-endian float32)."""
    changed = False
    for item in data.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            changed = True
    return changed


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
        embedders: dict[str, Any] = {}  # shared by every task model (an embedding model is ~30 MB)
        self._planners = {name: Planner(g, rng=self._rng, clock=clock, embedders=embedders)
                          for name, g in self._groups.items()}
        self._transport: Transport = transport if transport is not None else build_client(
            config, [(d.config, d.endpoint) for g in self._groups.values() for d in g.deployments])
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
    def planner(self, model: str) -> Planner:
        self.group(model)
        return self._planners[model]

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
        headers: Mapping[str, str] | None = None,
        usable: Callable[[Deployment], bool] | None = None,
    ) -> tuple[T, Deployment]:
        queue = [model]
        visited: set[str] = set()
        kind = "unavailable"
        headers = headers or {}
        while queue:
            name = queue.pop(0)
            if name in visited:
                continue
            visited.add(name)
            group = self.group(name)
            planner = self._planners[name]
            only: list[str] | None = None
            route = planner.choose_route(body, headers)
            if route is not None:
                ctx.notes.append(f"task route {route.route}: {route.summary}")
                if route.target is not None:
                    queue.insert(0, route.target)
                    continue
                only = route.order
            if self._needs_tokens[name] and ctx.prompt_tokens is None:
                ctx.prompt_tokens = count_prompt_tokens(body)
            tokens = ctx.prompt_tokens
            metadata = body.get("metadata")
            tagged = "x-stellwerk-tags" in headers or (isinstance(metadata, dict) and "tags" in metadata)
            order, decision = planner.plan(
                lambda t=tokens: request_facts(body, headers, stream, t), only=only, tagged=tagged)  # type: ignore[misc]
            if group.deployments and any(d.routing.count_usage for d in group.deployments):
                output = body.get("max_completion_tokens") or body.get("max_tokens")
                ctx.reserve_tokens = (tokens if tokens is not None else estimate_tokens(prompt_chars(body))) + (
                    output if isinstance(output, int) else 256)
            ctx.decision = decision
            context_removed = 0
            for dep_id, filter_name, why in decision.removed:
                ctx.notes.append(f"{dep_id} removed by {filter_name}: {why}")
                ctx.removed.append((dep_id, filter_name, why))
                context_removed += why.startswith("context")
            loop: AttemptLoop[T] = AttemptLoop(group, order, make_op(group), ctx, clock=self._clock,
                                               sleep=self._sleep, stream=stream, context_skips=context_removed)
            if tried:
                loop.tries.update({k: v for k, v in tried.items() if k in {d.id for d in group.deployments}})
            if usable is not None:
                loop.done.update(d.id for d in group.deployments if not usable(d))
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
        if not ctx.failed and ctx.removed:
            # Nothing was attempted: the filters left no deployment. Say which and why.
            why = "; ".join(f"{d} ({f}: {w})" for d, f, w in ctx.removed[:8])
            at_limit = all(f == "limits" for _, f, _ in ctx.removed)
            error = AllAttemptsFailedError(model, [], 429 if at_limit else 503)
            error.message = (f"No deployment of model '{model}' can take this request now: {why}."
                             + (" Retry after the rate-limit window." if at_limit else ""))
            raise error
        raise AllAttemptsFailedError(model, ctx.failed, _final_status(ctx.failed))

    def explain(self, ctx: RequestContext, served: str | None) -> str:
        """The ``x-stellwerk-route`` header: the decision, who served, and what happened on the way."""
        decision: Decision | None = ctx.decision
        if decision is not None and not ctx.notes and not ctx.failed and decision.summary.isascii():
            return decision.summary  # the common case: the first choice answered at once
        parts = [decision.summary if decision is not None else "?"]
        if served is not None and decision is not None and decision.order and decision.order[0] != served:
            parts.append(f"served by {served}")
        parts.extend(ctx.notes[:4])
        if ctx.failed:
            parts.append(f"{len(ctx.failed)} failed attempt(s)")
        text = "; ".join(parts)
        text = text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")
        return text if len(text) <= 400 else text[:399] + "~"

    def _observe(self, ctx: RequestContext, deployment: Deployment, usage: Usage, cost: float,
                 latency: float, ttft: float | None = None, answered: bool = True) -> None:
        """Feed routing statistics and experiments once ``deployment`` answered (or, for a stream, broke off)."""
        if answered:
            deployment.observe(latency, ttft, usage.completion_tokens, usage.total_tokens - ctx.reserve_tokens)
        planner = self._planners[deployment.model]
        if planner.experiments is None:
            return
        for attempt in ctx.failed:
            variant = planner.variant_of(attempt.deployment)
            if variant is not None:
                planner.experiments.record(variant, None, True)
        if answered:
            variant = planner.variant_of(deployment.id)
            if variant is not None:
                planner.experiments.record(variant, latency, False, cost)

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
                   validated: bool = False, timeout: float | None = None, headers: Mapping[str, str] | None = None,
                   **params: Any) -> ChatResult:
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
            "chat", group.name, ctx, self._route(group.name, ctx, make_op, request, headers=headers), False)
        usage = usage_from(data.get("usage")) or self._estimate(request, data)
        self._observe(ctx, deployment, usage, usage.cost(deployment.config.price), ctx.last_elapsed)
        return self._answered(ChatResult, "chat", group, ctx, deployment, data, raw, usage)

    def _answered(self, kind: type[R], operation: str, group: ModelGroup, ctx: RequestContext,
                  deployment: Deployment, data: dict[str, Any], raw: bytes | None, usage: Usage) -> R:
        """A complete answer: its cost, the request's record, the result."""
        cost = usage.cost(deployment.config.price)
        latency = self._clock() - ctx.started
        emit(self._listeners, RequestRecord(
            request_id=ctx.request_id, operation=operation, model=group.name, deployment=deployment.id, status=200,
            attempts=tuple(ctx.failed), latency=latency, ttft=None, stream=False, usage=usage, cost=cost,
        ))
        return kind(data, raw, group.name, deployment.id, ctx.attempts, usage, cost, latency, ctx.request_id,
                    self.explain(ctx, deployment.id))

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
                          validated: bool = False, timeout: float | None = None,
                          headers: Mapping[str, str] | None = None, **params: Any) -> ChatStream:
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
            "chat", group.name, ctx, self._route(group.name, ctx, make_op, request, stream=True, headers=headers), True)

        broken_counts: dict[str, int] = {}

        async def resume(partial: str, produced: int, broken: str) -> Opened | None:
            broken_counts[broken] = broken_counts.get(broken, 0) + 1
            if not group.config.resume_streams or sum(broken_counts.values()) > MAX_RESUMES:
                return None
            n = request.get("n")
            if isinstance(n, int) and n > 1:
                return None  # several choices cannot be continued as one assistant prefix

            def make_resume_op(g: ModelGroup) -> Op[Opened]:
                async def op(deployment: Deployment, attempt_timeout: float) -> Opened:
                    resumed = continuation_body(request, partial, deployment.resume, produced)
                    assert resumed is not None  # deployments with resume: off are not usable here
                    return await operations.open_stream(transport, clock, g, deployment, resumed, attempt_timeout)
                return op

            ctx.notes.append(f"stream from {broken} broke off after {len(partial)} characters; resuming")
            try:
                resumed_stream, _ = await self._route(group.name, ctx, make_resume_op, request, stream=True,
                                                      tried=broken_counts, headers=headers,
                                                      usable=lambda d: d.resume != "off")
            except StellwerkError:
                return None
            return resumed_stream

        def done(deployment: Deployment, usage: Usage, cost: float, latency: float, ttft: float | None,
                 answered: bool) -> None:
            self._observe(ctx, deployment, usage, cost, latency, ttft, answered)

        stream = ChatStream(
            model=group.name, opened=opened, include_usage=include_usage, failed=ctx.failed, attempts=ctx.attempts,
            started=ctx.started, request_id=ctx.request_id, prompt_chars=prompt_chars(request),
            listeners=self._listeners, clock=clock, resume=resume, on_done=done,
        )
        stream.route = self.explain(ctx, opened.deployment.id)
        return stream

    # -- embeddings ---------------------------------------------------------
    async def embeddings(self, body: dict[str, Any] | None = None, /, *, request_id: str | None = None,
                         validated: bool = False, timeout: float | None = None,
                         headers: Mapping[str, str] | None = None, **params: Any) -> EmbeddingsResult:
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
            "embeddings", group.name, ctx, self._route(group.name, ctx, make_op, request, headers=headers), False)
        if request.get("encoding_format") == "base64" and _float_vectors_to_base64(data):
            raw = None  # the answer changed: re-encode it
        usage = usage_from({"completion_tokens": 0, **(data.get("usage") or {})}) or Usage(estimated=True)
        return self._answered(EmbeddingsResult, "embeddings", group, ctx, deployment, data, raw, usage)

    # -- operations -----------------------------------------------------------
    def dry_run(self, model: str, body: dict[str, Any] | None = None,
                headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Where would this request go, and why? (``GET /admin/route``; nothing is sent upstream.)"""
        body = dict(body or {"model": model, "messages": [{"role": "user", "content": "Hello"}]})
        body["model"] = model
        headers = headers or {}
        steps: list[dict[str, Any]] = []
        name = model
        only: list[str] | None = None
        for _ in range(8):  # task routes may hand over to another model
            planner = self.planner(name)
            route = planner.choose_route(body, headers)
            if route is not None:
                steps.append(msgspec.to_builtins(route))
                if route.target is not None:
                    name = route.target
                    continue
                only = route.order
            tokens = count_prompt_tokens(body) if self._needs_tokens[name] else None
            facts = request_facts(body, headers, bool(body.get("stream")), tokens)
            _, decision = planner.plan(lambda f=facts: f, only=only, explain=True)  # type: ignore[misc]
            steps.append(msgspec.to_builtins(decision))
            health = {d.id: d.breaker.snapshot()["state"] for d in self._groups[name].deployments}
            return {"model": model, "answered_by_model": name, "steps": steps, "breakers": health,
                    "fallbacks": list(self._groups[name].config.fallbacks)}
        raise ValueError("task routes form a loop")

    def experiments(self) -> dict[str, Any]:
        """Per-variant counts, latency, errors and cost of every A/B model (``GET /admin/experiments``)."""
        result: dict[str, Any] = {}
        for name, planner in self._planners.items():
            if planner.experiments is None:
                continue
            snapshot = getattr(planner.strategy, "snapshot", None)
            result[name] = {"variants": planner.experiments.snapshot(),
                            "assignment": snapshot() if snapshot is not None else None}
        return result

    def set_weight(self, deployment_id: str, weight: float) -> None:
        """Change a deployment's weight at run time (weighted strategies read it on the next request)."""
        if not (0 <= weight <= 1e6):
            raise ValueError("weight must be between 0 and 1000000")
        for group in self._groups.values():
            for dep in group.deployments:
                if dep.id == deployment_id:
                    dep.weight = weight
                    return
        raise KeyError(deployment_id)

    def update_strategy_options(self, model: str, options: Mapping[str, Any]) -> None:
        """Change a model's strategy options at run time (e.g. a canary from 5% to 50%)."""
        self.planner(model).update_options(options)

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
