"""Virtual time: an asyncio event loop whose clock jumps to the next timer instead of waiting for it.

    loop = VirtualLoop()
    result = loop.run_until_complete(main())     # asyncio.sleep(600) inside returns at once
    loop.time()                                   # 600.0: the virtual seconds that passed

Everything built on the loop's clock follows it: ``asyncio.sleep``, ``asyncio.timeout``,
``wait_for``, ``call_later``, and the router's injected ``clock=loop.time`` and
``sleep=loop.sleep``. When no callback is ready, the loop does not block in ``select``:
it moves its clock to the earliest scheduled timer. Virtual time starts at 0.

There are no sockets in a simulation, so the loop never polls: one pass runs the callbacks
that were ready when it began, then the timers that are due, as asyncio's own loop does;
when nothing is ready, the clock jumps to the earliest timer. Waiting on a file
descriptor is an error, and so is a loop with no timer left and nothing ready (it could
only wait forever: :class:`Stalled`).

Timers sit in a heap of plain tuples ``(when, seq, handle, callback, args)``, ordered by
time and then by the order they were set (C comparisons, no ``TimerHandle.__lt__``).
Besides ``call_at``/``call_later`` (which return a cancellable ``TimerHandle``), the loop
offers two cheaper forms for the simulator's own waits, which need no handle:
:meth:`VirtualLoop.sleep` and :meth:`VirtualLoop.at`.
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections.abc import Callable, Mapping
from contextvars import Context
from heapq import heapify, heappop, heappush
from typing import Any, TypeVar, TypeVarTuple, Unpack

__all__ = ["Stalled", "VirtualLoop"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
_RESOLUTION = 1e-9
"""Timers due within this of now run in the same pass (asyncio's ``_clock_resolution`` for the monotonic clock)."""
_MIN_CANCELLED = 100
"""The heap is rebuilt without cancelled timers when more than this many, and more than half, are cancelled."""


class Stalled(RuntimeError):
    """The simulation has nothing to run and no timer: it would wait forever."""


class _NoWaitSelector(selectors.BaseSelector):
    """A selector that holds the loop's wake-up pipe and is never asked to wait (the loop does not poll)."""

    def __init__(self) -> None:
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self.unregister(fileobj)
        return self.register(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        raise RuntimeError("the virtual loop does not poll: a simulation has no sockets")

    def close(self) -> None:
        self._keys.clear()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # cancelled while it slept
        future.set_result(None)


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (see the module docstring). Not for I/O: it has no real selector."""

    def __init__(self) -> None:
        self._now = 0.0
        self._timers: list[tuple[float, int, asyncio.TimerHandle | None, Callable[..., object], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        super().__init__(_NoWaitSelector())

    def time(self) -> float:
        return self._now

    def _write_to_self(self) -> None:
        """Nothing to wake: the loop never blocks (``call_soon_threadsafe`` and async-generator finalizers
        would otherwise write to the wake-up socket each time)."""

    def advance(self, seconds: float) -> None:
        """Move the clock forward (timers that fall due run in the next pass)."""
        self._now += seconds

    # -- scheduling ------------------------------------------------------------------------------------------------
    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                  context: Context | None = None) -> asyncio.Handle:
        """``call_soon`` without the debug-mode checks (this loop has no debug mode)."""
        if self._closed:  # type: ignore[attr-defined]
            raise RuntimeError("Event loop is closed")
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)  # type: ignore[attr-defined]
        return handle

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                context: Context | None = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:  # type: ignore[attr-defined]
            raise RuntimeError("Event loop is closed")
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        heappush(self._timers, (when, next(self._seq), timer, callback, args))
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def call_later(self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts,
                   context: Context | None = None) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self._now + delay, callback, *args, context=context)

    def at(self, when: float, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(*args)`` at virtual time ``when``, outside any context; it cannot be cancelled (so the
        callback must check whether it is still wanted), and costs no handle."""
        heappush(self._timers, (when, next(self._seq), None, callback, args))

    async def sleep(self, delay: float, result: _T = None) -> _T:  # type: ignore[assignment]
        """``asyncio.sleep`` on this loop, without a timer handle to create and cancel."""
        future = self.create_future()
        heappush(self._timers, (self._now + max(delay, 0.0), next(self._seq), None, _wake, (future,)))
        await future
        return result

    def close(self) -> None:
        self._timers.clear()
        super().close()

    # -- running ---------------------------------------------------------------------------------------------------
    def _run_once(self) -> None:
        """Run passes until the loop is stopped (``run_forever`` checks for that after each call).

        A pass: if nothing is ready, the clock jumps to the earliest timer; the callbacks that were ready run,
        then the timers that are due, in order of time and of setting. Callbacks scheduled meanwhile wait for
        the next pass, as in asyncio's loop.
        """
        ready = self._ready  # type: ignore[attr-defined]
        timers = self._timers
        while True:
            if len(timers) > 2 * _MIN_CANCELLED and self._timer_cancelled_count > len(timers) // 2:
                self._drop_cancelled()
            if not ready and not self._stopping:  # type: ignore[attr-defined]
                if not timers:
                    raise Stalled("the simulation is waiting for something that will never happen (no timer is left)")
                if timers[0][0] > self._now:
                    self._now = timers[0][0]
            end = self._now + _RESOLUTION
            due = []
            while timers and timers[0][0] < end:
                due.append(heappop(timers))
            for _ in range(len(ready)):
                handle = ready.popleft()
                if handle._cancelled:
                    continue
                try:
                    handle._context.run(handle._callback, *handle._args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._report(exc, handle, handle._callback, handle._args)
            for _, _, timer, callback, args in due:
                try:
                    if timer is None:
                        callback(*args)
                    else:
                        timer._scheduled = False  # type: ignore[attr-defined]
                        if timer._cancelled:
                            self._timer_cancelled_count -= 1
                            continue
                        timer._context.run(callback, *args)  # type: ignore[attr-defined]
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._report(exc, timer, callback, args)
            if self._stopping:  # type: ignore[attr-defined]
                return

    def _report(self, exc: BaseException, handle: asyncio.Handle | None, callback: Any, args: Any) -> None:
        self.call_exception_handler({"message": f"Exception in callback {callback!r}{args!r}", "exception": exc,
                                     "handle": handle})

    def _drop_cancelled(self) -> None:
        kept = []
        for entry in self._timers:
            timer = entry[2]
            if timer is not None and timer._cancelled:
                timer._scheduled = False  # type: ignore[attr-defined]
            else:
                kept.append(entry)
        heapify(kept)
        self._timers[:] = kept
        self._timer_cancelled_count = 0
