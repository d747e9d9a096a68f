"""A future several waiters share, which no waiter's cancellation cancels.

A round (:mod:`.rounds`) has one future for all the admissions it carries. When the task of one of them is
cancelled (its client went away) while it awaits, asyncio cancels the future the task awaits: with a
plain future that would end every other admission of the round with a ``CancelledError`` they did not ask
for, and the round's reply would find its future done. A :class:`SharedFuture` refuses: the cancelled task
gets its ``CancelledError`` when the round's reply (or its deadline) arrives, and the others their result.

Not compiled (native/modules.txt): a subclass of asyncio's C future is a plain Python class.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

__all__ = ["SharedFuture"]

T = TypeVar("T")


class SharedFuture(asyncio.Future[T]):
    """An :class:`asyncio.Future` whose :meth:`cancel` does nothing (see the module's docstring)."""

    def cancel(self, msg: object = None) -> bool:
        return False
