"""Virtual time: an asyncio event loop whose clock jumps to the next timer instead of waiting for it.

    loop = VirtualLoop()
    result = loop.run_until_complete(main())     # asyncio.sleep(600) inside returns at once
    loop.time()                                   # 600.0: the virtual seconds that passed

Everything built on the loop's clock follows it: ``asyncio.sleep``, ``asyncio.timeout``,
``wait_for``, ``call_later``, and the router's injected ``clock=loop.time`` and
``sleep=asyncio.sleep``. When no callback is ready, the loop does not block in
``select``: it moves its clock to the earliest scheduled timer. Virtual time starts at 0.

There are no sockets in a simulation. The loop's selector only holds the loop's own
wake-up pipe; waiting on a real file descriptor is an error, and so is a loop with no
timer left and nothing ready (it could only wait forever: :class:`Stalled`).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Mapping
from typing import Any

__all__ = ["Stalled", "VirtualLoop"]


class Stalled(RuntimeError):
    """The simulation has nothing to run and no timer: it would wait forever."""


class _NoWaitSelector(selectors.BaseSelector):
    """A selector that never waits: ``select(timeout)`` advances the loop's virtual clock by ``timeout``."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop
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
        if timeout is None:
            raise Stalled("the simulation is waiting for something that will never happen (no timer is left)")
        if timeout > 0:
            self._loop.advance(timeout)
        return []

    def close(self) -> None:
        self._keys.clear()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (see the module docstring). Not for I/O: it has no real selector."""

    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_NoWaitSelector(self))

    def time(self) -> float:
        return self._now

    def _write_to_self(self) -> None:
        """Nothing to wake: the loop never blocks (``call_soon_threadsafe`` and async-generator finalizers
        would otherwise write to the wake-up socket each time)."""

    def advance(self, seconds: float) -> None:
        """Move the clock forward (the selector does, when the loop would otherwise wait)."""
        self._now += seconds
