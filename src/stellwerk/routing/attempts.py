"""The attempt loop for one model: which deployment next, how long to wait, when to stop.

Written as a plain loop (TensorZero style), every attempt's error collected:

1. The plan: the strategy's order, minus deployments whose context window the
   prompt cannot fit, minus open circuit breakers (unless fewer than
   ``panic_threshold`` of them are healthy: then health is ignored rather than
   failing everything).
2. Each deployment is tried once, in plan order, skipping any at its bulkhead
   limit. A transient failure (RETRY_HERE) moves on to the next *untried*
   deployment at once; only when all were tried does a deployment get a repeat
   attempt (up to ``retries`` each), after a jittered exponential backoff that
   honours a short Retry-After.
3. A repeated attempt on a deployment (a true retry), moving on to a
   deployment that is failing as well, and every hedge must be paid for from
   the model's retry budget (a retry also from the deployment's), so that
   when everything fails the upstream load stays near one attempt per client
   request. Moving on to a deployment that answers is free: failover to a
   healthy deployment is never refused.
4. Stop at the request's deadline. A client error is returned at once; a
   content-policy refusal ends this model (its fallbacks decide); a
   context-too-long answer skips that deployment.
5. Hedging (opt-in): if an attempt has produced nothing after the hedge delay,
   a second one starts on another deployment; the first answer wins and the
   other is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from stellwerk.errors import Attempt, Outcome, UpstreamError
from stellwerk.providers.redact import scrub

from .deployment import Deployment, ModelGroup

__all__ = ["AttemptLoop", "ModelFailed", "RequestContext"]

T = TypeVar("T")
Operation = Callable[[Deployment, float], Awaitable[T]]


class RequestContext:
    """What one client request carries across attempts, models and fallbacks."""

    __slots__ = ("attempts", "deadline", "decision", "deposited", "failed", "last_elapsed", "notes", "prompt_tokens",
                 "removed", "request_id", "reserve_tokens", "started")

    def __init__(self, request_id: str, started: float, deadline: float) -> None:
        self.request_id = request_id
        self.started = started
        self.deadline = deadline
        self.failed: list[Attempt] = []
        self.attempts = 0
        """Upstream attempts started (failed, won, and cancelled hedges)."""
        self.prompt_tokens: int | None = None
        self.notes: list[str] = []
        """Decisions worth explaining (skips, panic mode, budget exhaustion, fallbacks)."""
        self.decision: Any = None
        """The planner's decision for the model that answered (a ``planner.Decision``)."""
        self.deposited: set[str] = set()
        """Models whose retry budget this request has paid into."""
        self.removed: list[tuple[str, str, str]] = []
        """``(deployment, filter, why)`` for every deployment a planner's filter removed."""
        self.reserve_tokens = 0
        """Tokens counted against a deployment's per-minute window when an attempt starts (corrected
        to the real usage when the answer arrives), so that a burst cannot overrun ``tpm``."""
        self.last_elapsed = 0.0
        """Seconds the winning attempt took (to the answer, or to a stream's first chunk)."""


class ModelFailed(Exception):
    """No deployment of a model could answer. ``kind``: ``context``, ``content`` or ``unavailable``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Failed:
    __slots__ = ()


_FAILED = _Failed()


class AttemptLoop(Generic[T]):
    def __init__(
        self,
        group: ModelGroup,
        order: Sequence[Deployment],
        operation: Operation[T],
        ctx: RequestContext,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        stream: bool = False,
        context_skips: int = 0,
    ) -> None:
        self.group = group
        self.op = operation
        self.ctx = ctx
        self.clock = clock
        self.sleep = sleep
        self.stream = stream
        self.tries: dict[str, int] = {}
        self.done: set[str] = set()
        """Deployments not to try again in this request."""
        self.busy: set[str] = set()
        """Deployments with an attempt running right now (hedging)."""
        self.retry_after: dict[str, float | None] = {}
        self.context_skips = context_skips
        """Deployments the prompt does not fit (removed by the planner, or answered so)."""
        self.other_failures = 0
        self.plan, self.panic = self._plan(order)

    # -- planning -----------------------------------------------------------
    def _plan(self, order: Sequence[Deployment]) -> tuple[list[Deployment], bool]:
        plan = list(order)
        healthy = [d for d in plan if d.breaker.available()]
        panic = bool(plan) and len(healthy) < self.group.config.panic_threshold * len(plan)
        if panic:
            # Envoy's panic mode, for ordered strategies: the unhealthy become last resorts
            # instead of being excluded; the healthy are still tried first.
            self.ctx.notes.append(f"panic: only {len(healthy)}/{len(plan)} healthy, trying the others as well")
            plan = healthy + [d for d in plan if d not in healthy]
        return plan, panic

    def _pick(self) -> Deployment | None:
        retries = self.group.config.retries
        best: Deployment | None = None
        best_tries = 1 << 30
        for dep in self.plan:
            if dep.id in self.done or dep.id in self.busy or dep.full:
                continue
            if not self.panic and not dep.breaker.available():
                continue
            tries = self.tries.get(dep.id, 0)
            if tries > retries:
                continue
            if tries == 0:
                return dep  # an untried deployment always goes first
            if tries < best_tries:
                best, best_tries = dep, tries
        return best

    # -- one attempt ----------------------------------------------------------
    async def _one(self, dep: Deployment, prepaid: bool = False) -> T | _Failed:
        """Run one attempt with all bookkeeping. Raises only for answers that end the model."""
        ctx, group = self.ctx, self.group
        now = self.clock()
        tries = self.tries.get(dep.id, 0)
        # Paid from the model's retry budget: a repeat on a deployment this request already tried,
        # and moving on to a deployment that is failing too (its last answer was a failure). Moving
        # on to one that is answering is free: that is plain failover, and must never be refused
        # while a healthy deployment exists.
        paid = bool(tries) or bool(ctx.attempts and dep.breaker.policy.consecutive)
        if paid and not prepaid and not group.budget.try_withdraw():
            ctx.notes.append("retry budget of the model is spent")
            self.done.update(d.id for d in self.plan)
            return _FAILED
        if tries:
            if not dep.budget.try_withdraw():
                ctx.notes.append(f"retry budget of {dep.id} is spent")
                self.done.add(dep.id)
                return _FAILED
        else:
            dep.budget.deposit()
        if tries:
            wait = group.backoff.delay(tries, self.retry_after.get(dep.id))
            if now + wait >= ctx.deadline:
                self.done.add(dep.id)
                return _FAILED
            if wait > 0:
                await self.sleep(wait)
                now = self.clock()
        remaining = ctx.deadline - now
        if remaining <= 0:
            return _FAILED
        if not self.panic and not dep.breaker.allow():
            self.done.add(dep.id)
            return _FAILED
        timeout = min(group.ttft_timeout_for(dep) if self.stream else group.timeout_for(dep), remaining)
        self.tries[dep.id] = tries + 1
        ctx.attempts += 1
        if dep.routing.count_usage:
            dep.routing.requests.add()
            dep.routing.tokens.add(ctx.reserve_tokens)
        dep.in_flight += 1
        self.busy.add(dep.id)
        try:
            result = await self.op(dep, timeout)
        except UpstreamError as err:
            return self._failed(dep, err)
        except BaseException:
            dep.breaker.release()
            raise
        finally:
            dep.in_flight -= 1
            self.busy.discard(dep.id)
        elapsed = self.clock() - now
        ctx.last_elapsed = elapsed
        if self.stream:
            dep.health.first_token(elapsed)  # success (and the breaker's verdict) comes when the stream completes
        else:
            dep.breaker.record(True)
            dep.health.success(self.clock(), elapsed, None)
        return result

    def _failed(self, dep: Deployment, err: UpstreamError) -> _Failed:
        scrub(err, dep.endpoint.secrets)
        self.ctx.failed.append(Attempt(dep.id, err.outcome, err.message, err.upstream_status, err.reason,
                                       err.retry_after))
        outcome = err.outcome
        if outcome is Outcome.CLIENT_ERROR:
            dep.breaker.release()
            raise err
        if outcome is Outcome.CONTENT_POLICY:
            dep.breaker.release()
            raise ModelFailed("content")
        if outcome is Outcome.CONTEXT_TOO_LONG:
            dep.breaker.release()
            self.context_skips += 1
            self.done.add(dep.id)
            return _FAILED
        dep.breaker.record(False)
        dep.health.failure(self.clock(), err.message)
        self.other_failures += 1
        limit = self.group.config.backoff.max_retry_after
        if outcome is Outcome.MOVE_ON or (err.retry_after is not None and err.retry_after > limit):
            self.done.add(dep.id)  # asked to wait longer than we would: try elsewhere, not here again
        else:
            self.retry_after[dep.id] = err.retry_after
        return _FAILED

    # -- the loop -------------------------------------------------------------
    async def run(self) -> tuple[T, Deployment]:
        if self.group.name not in self.ctx.deposited:
            self.ctx.deposited.add(self.group.name)  # one deposit per client request, however often we come back
            self.group.budget.deposit()
        hedge = self.group.config.hedge
        while True:
            if self.clock() >= self.ctx.deadline:
                self.ctx.notes.append("deadline reached")
                break
            dep = self._pick()
            if dep is None:
                break
            if hedge is not None:
                won = await self._hedged(dep)
            else:
                result = await self._one(dep)
                won = None if isinstance(result, _Failed) else (result, dep)
            if won is not None:
                return won
        if (self.plan and self.context_skips >= len(self.plan)) or (not self.plan and self.context_skips):
            raise ModelFailed("context")
        raise ModelFailed("unavailable")

    def _hedge_delay(self, dep: Deployment) -> float | None:
        hedge = self.group.config.hedge
        assert hedge is not None
        if hedge.delay is not None:
            return hedge.delay
        observed = dep.health.ttft_quantile(hedge.quantile) if self.stream else None
        if observed is None and dep.health.latency is not None and not self.stream:
            observed = dep.health.latency * 1.5
        return None if observed is None else max(hedge.min_delay, observed)

    async def _hedged(self, dep: Deployment) -> tuple[T, Deployment] | None:
        hedge = self.group.config.hedge
        assert hedge is not None
        tasks: dict[asyncio.Task[T | _Failed], Deployment] = {
            asyncio.ensure_future(self._one(dep)): dep}
        hedges = 0
        delay = self._hedge_delay(dep)
        timer: asyncio.Task[None] | None = None
        try:
            while tasks:
                if delay is not None and timer is None:
                    timer = asyncio.ensure_future(self.sleep(delay))  # the injected clock decides when to hedge
                waiting: set[asyncio.Future[Any]] = {*tasks, *((timer,) if timer is not None else ())}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if timer is not None and timer in done:
                    done.discard(timer)
                    timer = None
                    if not any(t in done for t in tasks):
                        nxt = self._pick() if hedges < hedge.max_hedges else None
                        if nxt is not None and self.group.budget.try_withdraw():
                            self.ctx.notes.append(f"hedged: {dep.id} silent for {delay:.3f}s, also trying {nxt.id}")
                            tasks[asyncio.ensure_future(self._one(nxt, prepaid=True))] = nxt
                            hedges += 1
                        else:
                            delay = None
                        continue
                for task in [t for t in done if t in tasks]:
                    winner = tasks.pop(task)
                    result = task.result()  # re-raises CLIENT_ERROR / ModelFailed
                    if not isinstance(result, _Failed):
                        await self._cancel(tasks)
                        return result, winner
                if tasks and delay is not None:
                    delay = None  # one failed early: just wait for the other
                    if timer is not None:
                        timer.cancel()
                        timer = None
            return None
        finally:
            if timer is not None:
                timer.cancel()
            await self._cancel(tasks)

    @staticmethod
    async def _cancel(tasks: dict[asyncio.Task[T | _Failed], Deployment]) -> None:
        for task in tasks:
            task.cancel()
        for task in list(tasks):
            try:
                result = await task
            except BaseException:
                continue
            close = getattr(result, "aclose", None)
            if close is not None:
                await close()  # a stream that won a photo finish: release its connection
        tasks.clear()
