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

Each attempt holds a :class:`~.lease.Lease` on its deployment. The operation
settles it when it succeeds (a complete answer: ``ok``; a stream: its first
token, the stream settles the rest); the loop settles failures and
cancellations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from stellwerk.errors import Attempt, Outcome, UpstreamError
from stellwerk.pipeline.call import Call
from stellwerk.telemetry import Events, HedgeSent, RetryBudgetRefused

from .deployment import Deployment, ModelGroup
from .lease import Lease

if TYPE_CHECKING:
    from .planner import Decision

__all__ = ["AttemptLoop", "Journey", "ModelFailed", "Operation"]

class Answer(Protocol):
    """What an operation returns: something the loop can abandon (a hedge that lost a photo finish)."""

    async def aclose(self) -> None: ...


T = TypeVar("T", bound=Answer)
Operation = Callable[[Lease, float], Awaitable[T]]
"""``op(lease, timeout)``: one upstream attempt on ``lease.deployment``; settles the lease when it succeeds."""


class Journey:
    """What one call collects on its way across models, fallbacks and attempts (the call itself is frozen)."""

    __slots__ = ("attempts", "call", "decision", "deposited", "failed", "notes", "removed")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.failed: list[Attempt] = []
        self.attempts = 0
        """Upstream attempts started (failed, won, and cancelled hedges)."""
        self.notes: list[str] = []
        """Decisions worth explaining (skips, panic mode, budget exhaustion, fallbacks)."""
        self.decision: Decision | None = None
        """The planner's decision for the model that answered."""
        self.deposited: set[str] = set()
        """Models whose retry budget this request has paid into."""
        self.removed: list[tuple[str, str, str]] = []
        """``(deployment, filter, why)`` for every deployment a planner's filter removed."""

    def explain(self, served: str | None) -> str:
        """The ``x-stellwerk-route`` header: the decision, who served, and what happened on the way."""
        decision = self.decision
        if decision is not None and not self.notes and not self.failed and decision.summary.isascii():
            return decision.summary  # the common case: the first choice answered at once
        parts = [decision.summary if decision is not None else "?"]
        if served is not None and decision is not None and decision.order and decision.order[0] != served:
            parts.append(f"served by {served}")
        parts.extend(self.notes[:4])
        if self.failed:
            parts.append(f"{len(self.failed)} failed attempt(s)")
        text = "; ".join(parts)
        text = text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")
        return text if len(text) <= 400 else text[:399] + "~"


class ModelFailed(Exception):
    """No deployment of a model could answer. ``kind``: ``context``, ``content`` or ``unavailable``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Failed:
    __slots__ = ()


_FAILED = _Failed()


def _drop_timer(timer: list[asyncio.Task[None]]) -> None:
    """Cancel and forget the hedge timer, if one runs."""
    for pending in timer:
        pending.cancel()
    timer.clear()


class AttemptLoop(Generic[T]):
    """One model's attempts for one call. Built with everything it needs; ``run`` once."""

    def __init__(
        self,
        group: ModelGroup,
        order: Sequence[Deployment],
        operation: Operation[T],
        journey: Journey,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        events: Events,
        stream: bool = False,
        context_skips: int = 0,
        reserve_tokens: int = 0,
        tried: Mapping[str, int] | None = None,
        excluded: Iterable[str] = (),
    ) -> None:
        """``tried``: attempts made on deployments before (a resumed stream); ``excluded``: not to be tried."""
        self.group = group
        self.op = operation
        self.journey = journey
        self.clock = clock
        self.sleep = sleep
        self.events = events
        self.stream = stream
        self.reserve_tokens = reserve_tokens
        self.tries: dict[str, int] = {}
        if tried:
            ids = {d.id for d in group.deployments}
            self.tries.update((k, v) for k, v in tried.items() if k in ids)
        self.done: set[str] = set(excluded) if excluded else set()
        """Deployments not to try again in this request."""
        self.busy: set[str] = set()
        """Deployments with an attempt running right now (hedging)."""
        self.retry_after: dict[str, float | None] = {}
        self.context_skips = context_skips
        """Deployments the prompt does not fit (removed by the planner, or answered so)."""
        self.plan, self.panic = self._plan(order)

    # -- planning -----------------------------------------------------------
    def _plan(self, order: Sequence[Deployment]) -> tuple[list[Deployment], bool]:
        plan = list(order)
        healthy = []
        for dep in plan:  # a loop, not a comprehension: no extra frame per request
            if dep.breaker.available():
                healthy.append(dep)
        panic = len(healthy) < len(plan) and self.group.panic(len(healthy), len(plan))
        if panic:
            # Ordered strategies keep their order among the healthy; the unhealthy become last resorts.
            self.journey.notes.append(f"panic: only {len(healthy)}/{len(plan)} healthy, trying the others as well")
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
    def _refused(self, dep: Deployment | None) -> _Failed:
        journey = self.journey
        if dep is None:
            journey.notes.append("retry budget of the model is spent")
            self.done.update(d.id for d in self.plan)
        else:
            journey.notes.append(f"retry budget of {dep.id} is spent")
            self.done.add(dep.id)
        if self.events.wants(RetryBudgetRefused):
            self.events.emit(RetryBudgetRefused(request_id=journey.call.request_id, model=self.group.name,
                                                deployment=None if dep is None else dep.id))
        return _FAILED

    async def _one(self, dep: Deployment, prepaid: bool = False) -> tuple[T, Lease] | _Failed:
        """Run one attempt with all bookkeeping. Raises only for answers that end the model."""
        journey, group = self.journey, self.group
        now = self.clock()
        tries = self.tries.get(dep.id, 0)
        # Paid from the model's retry budget: a repeat on a deployment this request already tried,
        # and moving on to a deployment that is failing too (its last answer was a failure). Moving
        # on to one that is answering is free: that is plain failover, and must never be refused
        # while a healthy deployment exists.
        paid = bool(tries) or bool(journey.attempts and dep.breaker.policy.consecutive)
        if paid and not prepaid and not group.budget.try_withdraw():
            return self._refused(None)
        if tries:
            if not dep.budget.try_withdraw():
                return self._refused(dep)
            wait = group.backoff.delay(tries, self.retry_after.get(dep.id))
            if now + wait >= journey.call.deadline:
                self.done.add(dep.id)
                return _FAILED
            if wait > 0:
                await self.sleep(wait)
                now = self.clock()
        else:
            dep.budget.deposit()
        remaining = journey.call.deadline - now
        if remaining <= 0:
            return _FAILED
        if not self.panic and not dep.breaker.allow():
            self.done.add(dep.id)
            return _FAILED
        shared = dep.state.shared
        if shared is not None:  # global limits: the deployment's, and the caller's not yet counted
            try:
                full = await shared.claim(dep, self.reserve_tokens)
            except BaseException:  # the caller's own limit is full (429), or the call was cancelled
                dep.breaker.release()
                raise
            if full is not None:  # at its limit across all replicas: as if the limits filter had removed it
                journey.removed.append((dep.id, "limits", full))
                self.done.add(dep.id)
                dep.breaker.release()
                return _FAILED
        timeout = min(group.ttft_timeout_for(dep) if self.stream else group.timeout_for(dep), remaining)
        self.tries[dep.id] = tries + 1
        journey.attempts += 1
        lease = Lease(dep, clock=self.clock, events=self.events, request_id=journey.call.request_id,
                      number=journey.attempts, reserve_tokens=self.reserve_tokens)
        self.busy.add(dep.id)
        try:
            return await self.op(lease, timeout), lease
        except UpstreamError as err:
            return self._failed(lease, err)
        except BaseException:
            lease.release()
            raise
        finally:
            self.busy.discard(dep.id)

    def _failed(self, lease: Lease, err: UpstreamError) -> _Failed:
        dep = lease.deployment
        self.journey.failed.append(lease.failed(err))
        outcome = err.outcome
        if outcome is Outcome.CLIENT_ERROR:
            err.attempts = list(self.journey.failed)  # the request was at fault: it ends here, say what was tried
            raise err
        if outcome is Outcome.CONTENT_POLICY:
            raise ModelFailed("content")
        if outcome is Outcome.CONTEXT_TOO_LONG:
            self.context_skips += 1
            self.done.add(dep.id)
            return _FAILED
        limit = self.group.config.backoff.max_retry_after
        if outcome is Outcome.MOVE_ON or (err.retry_after is not None and err.retry_after > limit):
            self.done.add(dep.id)  # asked to wait longer than we would: try elsewhere, not here again
        else:
            self.retry_after[dep.id] = err.retry_after
        return _FAILED

    # -- the loop -------------------------------------------------------------
    async def run(self) -> tuple[T, Lease]:
        """The first answer and the lease it came with; :class:`ModelFailed` when no deployment answered."""
        if self.group.name not in self.journey.deposited:
            self.journey.deposited.add(self.group.name)  # one deposit per client request, however often we come back
            self.group.budget.deposit()
        hedge = self.group.config.hedge
        while True:
            if self.clock() >= self.journey.call.deadline:
                self.journey.notes.append("deadline reached")
                break
            dep = self._pick()
            if dep is None:
                break
            won = await (self._hedged(dep) if hedge is not None else self._one(dep))
            if not isinstance(won, _Failed):
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

    def _send_hedge(self, slow: Deployment, delay: float) -> Deployment | None:
        """The deployment a hedge goes to, paid from the model's budget; None when there is none to pay for."""
        nxt = self._pick()
        if nxt is None or not self.group.budget.try_withdraw():
            return None
        call = self.journey.call
        self.journey.notes.append(f"hedged: {slow.id} silent for {delay:.3f}s, also trying {nxt.id}")
        if self.events.wants(HedgeSent):
            self.events.emit(HedgeSent(request_id=call.request_id, model=self.group.name, slow=slow.id, hedge=nxt.id,
                                       delay=delay))
        return nxt

    async def _hedged(self, dep: Deployment) -> tuple[T, Lease] | _Failed:
        tasks: dict[asyncio.Task[tuple[T, Lease] | _Failed], Deployment] = {
            asyncio.ensure_future(self._one(dep)): dep}
        timer: list[asyncio.Task[None]] = []  # the hedge timer while one runs
        # Not try/finally, and no await in the handler: compiled by mypyc, a coroutine that awaits in a block
        # entered by an exception can raise that exception again long after (see native/build.py).
        error: BaseException | None = None
        try:
            result = await self._race(dep, tasks, timer)
        except BaseException as err:  # cancelled, or CLIENT_ERROR / ModelFailed from a task
            error = err
        await self._stop(tasks, timer)
        if error is not None:
            raise error
        return result

    async def _stop(self, tasks: dict[asyncio.Task[tuple[T, Lease] | _Failed], Deployment],
                    timer: list[asyncio.Task[None]]) -> None:
        _drop_timer(timer)
        await self._cancel(tasks)

    async def _race(self, dep: Deployment, tasks: dict[asyncio.Task[tuple[T, Lease] | _Failed], Deployment],
                    timer: list[asyncio.Task[None]]) -> tuple[T, Lease] | _Failed:
        hedge = self.group.config.hedge
        assert hedge is not None
        hedges = 0
        delay = self._hedge_delay(dep)
        while tasks:
            if delay is not None and not timer:
                timer.append(asyncio.ensure_future(self.sleep(delay)))  # the injected clock decides when to hedge
            waiting: set[asyncio.Future[Any]] = {*tasks, *timer}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if timer and timer[0] in done:
                done.discard(timer.pop())
                if delay is not None and not any(t in done for t in tasks):
                    nxt = self._send_hedge(dep, delay) if hedges < hedge.max_hedges else None
                    if nxt is not None:
                        tasks[asyncio.ensure_future(self._one(nxt, prepaid=True))] = nxt
                        hedges += 1
                    else:
                        delay = None
                    continue
            for task in [t for t in done if t in tasks]:
                tasks.pop(task)
                result: tuple[T, Lease] | _Failed = task.result()  # re-raises CLIENT_ERROR / ModelFailed
                if not isinstance(result, _Failed):
                    return result  # the others are cancelled by _hedged
            if tasks and delay is not None:
                delay = None  # one failed early: just wait for the other
                _drop_timer(timer)
        return _FAILED

    @staticmethod
    async def _cancel(tasks: dict[asyncio.Task[tuple[T, Lease] | _Failed], Deployment]) -> None:
        for task in tasks:
            task.cancel()
        for task in list(tasks):
            try:
                result = await task
            except BaseException:
                continue
            if not isinstance(result, _Failed):
                answer, lease = result
                await answer.aclose()  # a stream that won a photo finish: release its connection
                lease.release()
        tasks.clear()
