"""The pipeline: middlewares around the innermost handler, in one written-down order.

    Handler    = (Call) -> Reply
    Middleware = (Call, next: Handler) -> Reply

    auth ─► limits (and budget reservation) ─► cache ─► tracing ─► route

A middleware may answer without calling ``next`` (a rejected key raises its
error; a cache hit returns a :class:`~stellwerk.pipeline.reply.Result`, or a
:class:`~stellwerk.pipeline.reply.ReplayStream` for a streamed call). ``route``
is the innermost handler: model, fallbacks and the attempt loop
(:mod:`stellwerk.routing.route`). With no middleware installed the pipeline
is the route handler itself: nothing is added to the hot path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from .call import Call
from .reply import Reply

__all__ = ["STAGES", "Handler", "Middleware", "compose"]

Handler = Callable[[Call], Awaitable[Reply]]

STAGES: tuple[str, ...] = ("auth", "limits", "cache", "tracing")
"""The order of the middlewares, outermost first. The route handler comes after the last."""


class Middleware(Protocol):
    def __call__(self, call: Call, next_handler: Handler, /) -> Awaitable[Reply]: ...


def _wrap(middleware: Middleware, inner: Handler) -> Handler:
    def handler(call: Call) -> Awaitable[Reply]:
        return middleware(call, inner)
    return handler


def compose(route: Handler, middlewares: Mapping[str, Sequence[Middleware]] | None = None) -> Handler:
    """``route`` wrapped by ``middlewares`` (by stage; several in one stage run in the order given)."""
    middlewares = middlewares or {}
    unknown = [stage for stage in middlewares if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown pipeline stage(s) {', '.join(unknown)}: expected one of {', '.join(STAGES)}")
    handler = route
    for stage in reversed(STAGES):
        for middleware in reversed(middlewares.get(stage, ())):
            handler = _wrap(middleware, handler)
    return handler
