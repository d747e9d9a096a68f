"""Typed events and the one listener type.

The request path emits small frozen events; everything that observes (the
stats collector, A/B accounting, logs, the demo board, later metrics and
traces) is a listener subscribed to the kinds it wants::

    events = Events()
    events.subscribe(stats, RequestFinished)      # one kind
    events.subscribe(print)                       # every kind

    RequestStarted ─► RouteDecided ─► AttemptStarted ─► AttemptFinished ─► … ─► RequestFinished
                      (HedgeSent, RetryBudgetRefused, StreamResumed, BreakerChanged on the way)

A listener must be fast and must not raise: an exception is logged and
swallowed, so that telemetry can never fail a request. An event nobody
listens to is not even built (``events.wants(kind)`` guards the hot path).

**Batches.** Aggregating observers (stats, metrics, the dashboard feed, the
access log) take finished-request records in batches instead::

    events.subscribe_batches(stats.take)          # take(records: Sequence[RequestFinished])

    emit(RequestFinished) ─► per-event listeners at once (the spend ledger journals before the answer)
                          ─► pending list ─► flush(): every batch listener once, with every record pending
    flush runs once at the end of the event loop iteration the first record arrived in (one
    ``call_soon``), at once when ``MAX_BATCH`` are pending or no loop runs, before any other
    event kind is delivered (the order of events is kept), and when called (``Router.aclose``).

Every record reaches every batch listener exactly once, in order. A reader that
runs in a later loop iteration (an HTTP request, a scrape, a dashboard) sees
them all; in-process code that reads an aggregate right after a call it awaited
calls :meth:`Events.flush` first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from .event_kinds import (
    AttemptFinished,
    AttemptStarted,
    BreakerChanged,
    Event,
    HedgeSent,
    RequestFinished,
    RequestStarted,
    RetryBudgetRefused,
    RouteDecided,
    StreamResumed,
)

__all__ = [
    "MAX_BATCH",
    "AttemptFinished",
    "AttemptStarted",
    "BatchListener",
    "BreakerChanged",
    "Event",
    "Events",
    "HedgeSent",
    "Listener",
    "RequestFinished",
    "RequestStarted",
    "RetryBudgetRefused",
    "RouteDecided",
    "StreamResumed",
]

log = logging.getLogger("stellwerk.events")


Listener = Callable[[Event], None]
"""The one listener type: a callable taking an event."""

BatchListener = Callable[[Sequence[RequestFinished]], None]
"""Takes finished-request records in batches (:meth:`Events.subscribe_batches`), oldest first."""

MAX_BATCH = 256
"""Records pending at most before they are delivered without waiting for the end of the loop iteration."""

_KINDS: tuple[type[Event], ...] = (RequestStarted, RequestFinished, RouteDecided, AttemptStarted, AttemptFinished,
                                   BreakerChanged, RetryBudgetRefused, HedgeSent, StreamResumed)


class Events:
    """Listeners by event kind. ``emit`` calls those subscribed to the event's kind, in order; finished-request
    records also go, in batches, to the batch listeners (see the module docstring)."""

    __slots__ = ("_batched", "_by_kind", "_pending", "heard")

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self._by_kind: dict[type[Event], tuple[Listener, ...]] = {}
        self._batched: tuple[BatchListener, ...] = ()
        self._pending: list[RequestFinished] = []
        self.heard: set[type[Event]] = set()
        """The kinds someone listens to (``Kind in events.heard`` is ``wants`` without a call, for the hot path)."""
        for listener in listeners:
            self.subscribe(listener)

    def subscribe(self, listener: Listener, *kinds: type[Event]) -> None:
        """Call ``listener`` for events of ``kinds`` (every kind when none is named)."""
        for kind in kinds or _KINDS:
            if kind not in _KINDS:
                raise TypeError(f"{kind.__name__} is not an event kind")
            self._by_kind[kind] = (*self._by_kind.get(kind, ()), listener)
            self.heard.add(kind)

    def subscribe_batches(self, listener: BatchListener) -> None:
        """Call ``listener`` with :class:`RequestFinished` records in batches (every record once, in order)."""
        self._batched = (*self._batched, listener)
        self.heard.add(RequestFinished)

    def wants(self, kind: type[Event]) -> bool:
        """Whether anyone listens to ``kind`` (so that an unheard event is never built)."""
        return kind in self.heard

    def emit(self, event: Event) -> None:
        kind = type(event)
        if kind is RequestFinished:
            if self._batched:
                pending = self._pending
                pending.append(event)  # type: ignore[arg-type]  # checked: kind is RequestFinished
                if len(pending) == 1:
                    try:
                        asyncio.get_running_loop().call_soon(self.flush)
                    except RuntimeError:  # no loop runs here (a library user's thread): deliver at once
                        self.flush()
                elif len(pending) >= MAX_BATCH:
                    self.flush()
        elif self._pending:
            self.flush()  # the records before this event reach their listeners first
        for listener in self._by_kind.get(kind, ()):
            try:
                listener(event)
            except Exception:
                log.exception("telemetry listener %r failed", listener)

    def flush(self) -> None:
        """Deliver the pending finished-request records to the batch listeners now."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        for listener in self._batched:
            try:
                listener(pending)
            except Exception:
                log.exception("telemetry batch listener %r failed", listener)
