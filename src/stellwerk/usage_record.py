"""The :class:`Usage` record (re-exported by :mod:`stellwerk.usage`).

It lives in this module of its own because ``stellwerk.usage`` is compiled with mypyc, which drops the keyword
arguments of a class statement (``frozen=True``); this module is not compiled.
"""

from __future__ import annotations

import msgspec

from stellwerk.config import Price

__all__ = ["Usage"]


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    """True when the upstream reported no usage and the counts were estimated."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def cost(self, price: Price) -> float:
        """Cost in US dollars."""
        return (self.prompt_tokens * price.input_per_mtok + self.completion_tokens * price.output_per_mtok) / 1e6
