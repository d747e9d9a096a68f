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

Each middleware sits in a :class:`Link` with the link after it. The stages
Stellwerk compiles (auth, limits) are :class:`Stage` subclasses: their links
call them, and they call the next link, as native methods, not through
Python's call protocol (about 350 instructions per hop). Any other callable
with the middleware signature works as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from mypy_extensions import mypyc_attr

from .call import Call
from .reply import Reply

__all__ = ["STAGES", "Handler", "Link", "Middleware", "Route", "Stage", "compose"]

Handler = Callable[[Call], Awaitable[Reply]]

STAGES: tuple[str, ...] = ("auth", "limits", "cache", "tracing")
"""The order of the middlewares, outermost first. The route handler comes after the last."""


class Middleware(Protocol):
    def __call__(self, call: Call, next_handler: Handler, /) -> Awaitable[Reply]: ...


class Link:
    """A handler: one middleware, given the link after it as its next handler (the last link is a :class:`Route`)."""

    __slots__ = ("after", "middleware", "stage")

    def __init__(self, middleware: Middleware, after: Link) -> None:
        self.middleware = middleware
        self.stage = middleware if isinstance(middleware, Stage) else None
        self.after = after

    def __call__(self, call: Call) -> Awaitable[Reply]:
        return self.handle(call)

    def handle(self, call: Call) -> Awaitable[Reply]:
        stage = self.stage
        if stage is not None:
            return stage.handle(call, self.after)
        return self.middleware(call, self.after)


class Route(Link):
    """The last link: the route handler."""

    __slots__ = ("route",)

    def __init__(self, route: Handler) -> None:
        self.route = route

    def handle(self, call: Call) -> Awaitable[Reply]:
        return self.route(call)


@mypyc_attr(allow_interpreted_subclasses=True)
class Stage:
    """A middleware whose :meth:`handle` gets the next link and calls its ``handle`` (natively when compiled)."""

    def handle(self, call: Call, after: Link, /) -> Awaitable[Reply]:
        raise NotImplementedError

    def __call__(self, call: Call, next_handler: Handler, /) -> Awaitable[Reply]:
        """As any middleware (a stage used outside :func:`compose`)."""
        return self.handle(call, next_handler if isinstance(next_handler, Link) else Route(next_handler))


def compose(route: Handler, middlewares: Mapping[str, Sequence[Middleware]] | None = None) -> Handler:
    """``route`` wrapped by ``middlewares`` (by stage; several in one stage run in the order given)."""
    middlewares = middlewares or {}
    unknown = [stage for stage in middlewares if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown pipeline stage(s) {', '.join(unknown)}: expected one of {', '.join(STAGES)}")
    ordered = [m for stage in STAGES for m in middlewares.get(stage, ())]
    if not ordered:
        return route
    link: Link = Route(route)
    for middleware in reversed(ordered):
        link = Link(middleware, link)
    return link
