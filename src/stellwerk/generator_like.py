"""A base for the async iterator classes that stand in for async generators on the request path.

mypyc compiles no async generators, so the request path's are classes. They must end like the generators did:
an iterator closed before its first step is only marked ended (an unstarted generator's ``finally`` never runs);
one closed after it, or dropped unfinished (where the loop's async-generator finalizer would have closed it), is
abandoned once. A subclass implements ``__anext__`` (marking ``_started``, and ``_over`` once it ended by itself)
and :meth:`_abandon`.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["GeneratorLike"]

T = TypeVar("T")


class GeneratorLike(Generic[T]):
    def __init__(self) -> None:
        self._started = False
        self._over = False

    def __aiter__(self) -> GeneratorLike[T]:
        return self

    async def __anext__(self) -> T:
        raise NotImplementedError

    def _abandon(self) -> None:
        """What the generator's ``finally`` did when it was closed (or dropped) between two steps."""

    def _stop(self) -> None:
        """End now, abandoned (an error, or a subclass's own end that does what abandoning does)."""
        self._over = True
        self._abandon()

    async def aclose(self) -> None:
        if not self._over:
            self._over = True
            if self._started:
                self._abandon()

    def __del__(self) -> None:
        if self._started and not self._over:
            self._stop()
