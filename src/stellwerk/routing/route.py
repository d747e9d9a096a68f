"""The innermost handler of the pipeline: a call's model, its route, the attempt loop, then fallbacks.

    call.model ─► task route (maybe another model) ─► planner: filters + strategy ─► attempt loop
       └─ ModelFailed(kind) ─► the model's fallbacks for that kind, in order ─► … ─► one error listing all

The answer becomes a :class:`~stellwerk.pipeline.Result` or a
:class:`~.stream.ChatStream`; both carry the request's completion.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Final, TypeVar

from stellwerk.errors import (
    AllAttemptsFailedError,
    Attempt,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    StellwerkError,
)
from stellwerk.http.transport import Transport
from stellwerk.pipeline import Call, ChatResult, EmbeddingsResult, Operation, Reply, Result
from stellwerk.telemetry import Events, RouteDecided

from . import operations
from .attempts import Answer, AttemptLoop, Journey, ModelFailed
from .attempts import Operation as AttemptOp
from .deployment import Deployment
from .lease import Lease
from .operations import Answered, Opened, continuation_body
from .stream import ChatStream

__all__ = ["RouteHandler", "final_status"]

T = TypeVar("T", bound=Answer)
R = TypeVar("R", bound=Result)

MAX_RESUMES: Final = 3
"""A stream that broke off is continued elsewhere at most this many times."""


def final_status(attempts: list[Attempt]) -> int:
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


def _no_answer(journey: Journey, kind: str) -> StellwerkError:
    """The one error of a call no deployment answered, naming every attempt (or every filter's reason)."""
    call, failed = journey.call, journey.failed
    if kind == "context":
        return _too_long(journey)
    if kind == "content":
        tried = "; ".join(a.describe() for a in failed)
        return ContentPolicyError(f"The request was refused by the provider's content policy. Tried: {tried}", failed)
    if failed and all(a.reason == "unsupported" for a in failed):
        # Every deployment refused for something in the request: asking again cannot help.
        why = "; ".join(a.describe() for a in failed[:8])
        refused = InvalidRequestError(f"No deployment of model '{call.model}' can serve this request: {why}.",
                                      param=next((a.param for a in failed if a.param), None),
                                      code="unsupported_by_deployments")
        refused.attempts = list(failed)
        return refused
    if not failed and journey.removed:
        return _filtered_out(journey)
    return AllAttemptsFailedError(call.model, failed, final_status(failed))


_PARAMS: Final = (("no tools", "tools"), ("no images", "messages"), ("no JSON mode", "response_format"),
           ("max_tokens", "max_tokens"))
"""Filter reasons that are the request's doing, and the parameter each names (tags: only those it asked for)."""


def _filtered_out(journey: Journey) -> StellwerkError:
    """Nothing was attempted: the filters left no deployment. Say which and why."""
    model, removed = journey.call.model, journey.removed
    why = "; ".join(f"{d} ({f}: {w})" for d, f, w in removed[:8])
    reasons = (*_PARAMS, ("needs ", "x-stellwerk-tags")) if journey.call.facts.tagged else _PARAMS
    params = [next((p for start, p in reasons if w.startswith(start)), None) for _, _, w in removed]
    if all(params):  # the request asks for what no deployment has: 400, naming it
        return InvalidRequestError(f"No deployment of model '{model}' can serve this request: {why}.",
                                   param=params[0], code="unsupported_by_deployments")
    at_limit = all(f == "limits" for _, f, _ in removed)
    failed = AllAttemptsFailedError(model, [], 429 if at_limit else 503)
    failed.message = (f"No deployment of model '{model}' can take this request now: {why}."
                      + (" Retry after the rate-limit window." if at_limit else ""))
    if at_limit:
        failed.limited = "deployment"
    return failed


def _too_long(journey: Journey) -> StellwerkError:
    """No context window fits: blame ``max_tokens`` when the prompt alone would fit one, else the prompt."""
    call = journey.call
    tokens = call.facts.counted_tokens
    windows = [d.config.context_window for d in call.table.models[call.model].group.deployments
               if d.config.context_window is not None]
    limit = call.facts.max_output_tokens
    if tokens is not None and limit is not None and windows and tokens < max(windows):
        error = ContextWindowExceededError(
            f"max_tokens {limit} leaves no room: the prompt (~{tokens} tokens) plus max_tokens exceeds the context "
            f"window of every deployment of model '{call.model}' (largest {max(windows)}); lower max_tokens.",
            journey.failed)
        error.param = "max_tokens"
        return error
    size = f" (~{tokens} tokens)" if tokens else ""
    return ContextWindowExceededError(
        f"The prompt{size} is too long for every deployment of model '{call.model}' and its fallbacks.", journey.failed)


def _float_vectors_to_base64(data: dict[str, Any]) -> bool:
    """Providers without base64 output answer floats; the client asked for base64 (little-endian float32)."""
    changed = False
    for item in data.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            changed = True
    return changed


class RouteHandler:
    """``await handler(call)``: the answer of the call's model or of its fallbacks."""

    def __init__(self, transport: Transport, *, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 events: Events) -> None:
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.events = events

    def __call__(self, call: Call) -> Awaitable[Reply]:
        journey = Journey(call)
        if call.operation is Operation.EMBEDDINGS:
            return self._embeddings(call, journey)
        if call.stream:
            return self._stream(call, journey)
        return self._chat(call, journey)

    # -- the route: a model, then its fallbacks -------------------------------
    async def run(self, journey: Journey, op: AttemptOp[T], *, stream: bool = False,
                  tried: Mapping[str, int] | None = None, resuming: bool = False) -> tuple[T, Lease]:
        """The first answer, and its lease, from the call's model or its fallbacks (the error when none)."""
        call = journey.call
        queue = [call.model]
        visited: set[str] = set()
        kind = "unavailable"
        while queue:
            name = queue.pop(0)
            if name in visited:
                continue
            visited.add(name)
            loop = self._loop(name, journey, op, stream, tried, resuming)
            if isinstance(loop, str):
                queue.insert(0, loop)  # a task route hands the call to another model
                continue
            try:
                return await loop.run()
            except ModelFailed as failed:
                kind = failed.kind
                fresh = [t for t in call.table.models[name].fallbacks(kind) if t not in visited]
                if fresh:
                    journey.notes.append(f"{name}: {kind}, falling back to {', '.join(fresh)}")
                queue[0:0] = fresh
        raise _no_answer(journey, kind)

    def _loop(self, name: str, journey: Journey, op: AttemptOp[T], stream: bool, tried: Mapping[str, int] | None,
              resuming: bool) -> AttemptLoop[T] | str:
        """Model ``name``'s attempt loop for this call, or the name of the model a task route hands it to."""
        call = journey.call
        model = call.table.models[name]  # looked up when the call was built; fallbacks by the config check
        planner, facts = model.planner, call.facts
        only: list[str] | None = None
        route = planner.choose_route(lambda: facts.task) if planner.strategy.chooses_routes else None
        if route is not None:
            journey.notes.append(f"task route {route.route}: {route.summary}")
            if route.target is not None:
                return route.target
            only = route.order
        exact = model.needs_tokens
        if exact:
            facts.prompt_tokens(True)
        order, decision = planner.plan(lambda: facts.routing(exact), only=only, tagged=facts.tagged)
        journey.decision = decision
        if self.events.wants(RouteDecided):
            self.events.emit(RouteDecided(request_id=call.request_id, model=name, strategy=decision.strategy,
                                          order=tuple(decision.order), summary=decision.summary))
        context_removed = 0
        for dep_id, filter_name, why in decision.removed:
            journey.notes.append(f"{dep_id} removed by {filter_name}: {why}")
            journey.removed.append((dep_id, filter_name, why))
            context_removed += why.startswith("context")
        group = model.group
        return AttemptLoop(
            group, order, op, journey, clock=self.clock, sleep=self.sleep, events=self.events, stream=stream,
            context_skips=context_removed, reserve_tokens=facts.reserve_tokens(exact) if model.counts_usage else 0,
            tried=tried, excluded=[d.id for d in group.deployments if d.resume == "off"] if resuming else ())

    # -- the three kinds of answer ----------------------------------------------
    def _result(self, kind: type[R], journey: Journey, deployment: Deployment, answered: Answered) -> R:
        call = journey.call
        usage = answered.usage
        cost = usage.cost(deployment.config.price)
        route = journey.explain(deployment.id)
        record = call.finished(self.clock(), status=200, deployment=deployment.id, attempts=tuple(journey.failed),
                               usage=usage, cost=cost, route=route)
        return kind(answered.data, answered.raw, call.model, deployment.id, journey.attempts, usage, cost,
                    record.latency, call.request_id, route, record)

    async def _chat(self, call: Call, journey: Journey) -> ChatResult:
        answered, lease = await self.run(journey, partial(operations.complete, self.transport, self.clock, call))
        return self._result(ChatResult, journey, lease.deployment, answered)

    async def _embeddings(self, call: Call, journey: Journey) -> EmbeddingsResult:
        answered, lease = await self.run(journey, partial(operations.embed, self.transport, self.clock, call))
        if call.body.get("encoding_format") == "base64" and _float_vectors_to_base64(answered.data):
            answered.raw = None  # the answer changed: re-encode it
        return self._result(EmbeddingsResult, journey, lease.deployment, answered)

    async def _stream(self, call: Call, journey: Journey) -> ChatStream:
        opened, _ = await self.run(journey, partial(operations.open_stream, self.transport, self.clock, call, call.body),
                                   stream=True)
        return ChatStream(call, journey, opened, Resumer(self, journey), clock=self.clock, events=self.events)

    def _continuation_op(self, call: Call, partial: str, produced: int) -> AttemptOp[Opened]:
        """Opens a stream that continues ``partial`` (as each deployment's ``resume`` mode asks)."""
        transport, clock = self.transport, self.clock

        async def op(lease: Lease, timeout: float) -> Opened:
            body = continuation_body(call.body, partial, lease.deployment.resume, produced)
            assert body is not None  # deployments with resume: off are excluded from resumes
            return await operations.open_stream(transport, clock, call, body, lease, timeout)

        return op


class Resumer:
    """Continues a stream that broke off on another deployment (at most ``MAX_RESUMES`` times per call)."""

    def __init__(self, handler: RouteHandler, journey: Journey) -> None:
        self._handler = handler
        self._journey = journey
        self._broken: dict[str, int] = {}

    async def __call__(self, partial: str, produced: int, broken: str) -> Opened | None:
        """A new opened stream that continues ``partial``, or None when the answer cannot be continued."""
        self._broken[broken] = self._broken.get(broken, 0) + 1
        call = self._journey.call
        model = call.table.model(call.model)
        if not model.config.resume_streams or sum(self._broken.values()) > MAX_RESUMES:
            return None
        n = call.body.get("n")
        if isinstance(n, int) and n > 1:
            return None  # several choices cannot be continued as one assistant prefix
        self._journey.notes.append(f"stream from {broken} broke off after {len(partial)} characters; resuming")
        op = self._handler._continuation_op(call, partial, produced)
        try:
            opened, _ = await self._handler.run(self._journey, op, stream=True, tried=self._broken, resuming=True)
        except StellwerkError:
            return None
        return opened
