"""A wall clock the tests move by hand, and a heartbeat sleep that never ends (tests beat by hand)."""

from __future__ import annotations

import asyncio


class Wall:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def never(seconds: float) -> None:
    await asyncio.Event().wait()  # the heartbeat loop waits for ever
