"""Pure decisions: what happens to one request, given the profile, the clock and the RNG.

:class:`Behaviour` never sleeps and never touches the network; the HTTP layer
(:mod:`stellwerk.sim.server`) carries its :class:`Decision` out. Checks run in
this order, the first that applies wins::

    outage window        -> OUTAGE_STATUS / REFUSE / HANG
    prompt > context     -> CONTEXT_LENGTH (400)
    trigger word         -> CONTENT_POLICY (400)
    one uniform draw u   -> RATE_LIMIT | ERROR | HANG | DROP | STREAM_ERROR | MALFORMED | OK
                            (bands laid out as in :mod:`stellwerk.sim.profile`)

Timing for answered requests: TTFT is ``latency_ms`` (fixed) or lognormal with
that mean, ``exp(N(ln(mean) - sigma**2 / 2, sigma))``; the pace is
``tokens_per_second`` or uniform in ``[tokens_per_second, tokens_per_second_max]``.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from typing import NamedTuple

from stellwerk.sim.profile import Profile

__all__ = ["Behaviour", "Decision", "Outcome"]


class Outcome(enum.Enum):
    """How a request ends. The value is the key used in stats."""

    OK = "ok"
    ERROR = "error"  # 5xx (or the outage's status)
    RATE_LIMIT = "rate_limited"  # 429
    HANG = "hang"  # accepted, never answered
    DROP = "drop"  # connection cut (mid-stream, or before any byte)
    STREAM_ERROR = "stream_error"  # the protocol's in-stream error event after some chunks (non-streamed: a 5xx)
    MALFORMED = "malformed"  # 200 with a body that does not parse
    REFUSE = "refused"  # connection closed without an answer (outage mode "refuse")
    CONTEXT_LENGTH = "context_length"  # 400 context_length_exceeded
    CONTENT_POLICY = "content_policy"  # 400 content_policy_violation

    __hash__ = object.__hash__  # Enum hashes by name in Python code; members compare by identity anyway


class Decision(NamedTuple):
    """What the HTTP layer should do with one request (a tuple: cheap to build per request)."""

    outcome: Outcome
    status: int = 200
    """HTTP status for answered outcomes (OK/MALFORMED: 200)."""
    ttft: float = 0.0
    """Seconds to wait before the first byte (errors and 429s are answered at once)."""
    token_interval: float = 0.0
    """Seconds per output token (0 = unpaced)."""
    cut_fraction: float = 0.5
    """For DROP/STREAM_ERROR/MALFORMED streams: share of the content chunks sent before the cut (0..1)."""
    retry_after: float = 0.0
    """For RATE_LIMIT: seconds the client should wait."""


_INSTANT_OK = Decision(Outcome.OK)


class Behaviour:
    """Decides the fate of each request.

    >>> b = Behaviour(Profile(error_rate=0.5), clock=lambda: 0.0, rng=random.Random(1))
    >>> b.decide(prompt_tokens=10, flagged=False).outcome in (Outcome.OK, Outcome.ERROR)
    True
    """

    __slots__ = ("_clock", "_origin", "_profile", "_rng", "_trivial")

    def __init__(self, profile: Profile, *, clock: Callable[[], float], rng: random.Random) -> None:
        self._clock = clock
        self._rng = rng
        self._origin = clock()
        self._profile = profile
        self._trivial = False
        self.profile = profile

    @property
    def profile(self) -> Profile:
        return self._profile

    @profile.setter
    def profile(self, profile: Profile) -> None:
        self._profile = profile
        p = profile
        # Nothing random, nothing timed: every request gets the same constant decision.
        self._trivial = (
            not p.outages
            and p.latency_ms == 0
            and p.tokens_per_second == 0
            and not any(
                (p.rate_limit_rate, p.error_rate, p.hang_rate, p.drop_mid_stream_rate, p.stream_error_rate, p.malformed_rate)
            )
        )

    def restart(self, profile: Profile, rng: random.Random | None = None) -> None:
        """Start over: outage windows count from now; the RNG is replaced if ``rng`` is given."""
        self._origin = self._clock()
        if rng is not None:
            self._rng = rng
        self.profile = profile

    def elapsed(self) -> float:
        """Seconds since the start (or the last restart)."""
        return self._clock() - self._origin

    def outage(self) -> Decision | None:
        """The decision of an outage window active now (every endpoint is down in one), else None."""
        p = self._profile
        if p.outages:
            now = self.elapsed()
            for outage in p.outages:
                if outage.active(now):
                    if outage.mode == "refuse":
                        return Decision(Outcome.REFUSE, status=0)
                    if outage.mode == "hang":
                        return Decision(Outcome.HANG, status=0)
                    return Decision(Outcome.ERROR, status=outage.status)
        return None

    def decide(self, prompt_tokens: int, flagged: bool) -> Decision:
        """The decision for one request with ``prompt_tokens`` whose prompt contains the trigger if ``flagged``."""
        p = self._profile
        if p.outages:
            down = self.outage()
            if down is not None:
                return down
        if p.context_window and prompt_tokens > p.context_window:
            return Decision(Outcome.CONTEXT_LENGTH, status=400)
        if flagged:
            return Decision(Outcome.CONTENT_POLICY, status=400)
        if self._trivial:
            return _INSTANT_OK
        rng = self._rng
        u = rng.random()
        edge = p.rate_limit_rate
        if u < edge:
            return Decision(Outcome.RATE_LIMIT, status=429, retry_after=p.retry_after_s)
        edge += p.error_rate
        if u < edge:
            return Decision(Outcome.ERROR, status=self._error_status(), ttft=self._ttft())
        edge += p.hang_rate
        if u < edge:
            return Decision(Outcome.HANG, status=0)
        edge += p.drop_mid_stream_rate
        if u < edge:
            return Decision(
                Outcome.DROP, status=200, ttft=self._ttft(), token_interval=self._interval(), cut_fraction=rng.random()
            )
        edge += p.stream_error_rate
        if u < edge:
            return Decision(
                Outcome.STREAM_ERROR, status=self._error_status(), ttft=self._ttft(), token_interval=self._interval(),
                cut_fraction=rng.random(),
            )  # fmt: skip
        edge += p.malformed_rate
        if u < edge:
            return Decision(Outcome.MALFORMED, ttft=self._ttft(), token_interval=self._interval(), cut_fraction=rng.random())
        return Decision(Outcome.OK, ttft=self._ttft(), token_interval=self._interval())

    def _error_status(self) -> int:
        statuses = self._profile.error_statuses
        return statuses[0] if len(statuses) == 1 else self._rng.choice(statuses)

    def _ttft(self) -> float:
        p = self._profile
        mean = p.latency_ms / 1000.0
        if mean <= 0 or p.latency_sigma <= 0:
            return mean
        sigma = p.latency_sigma
        return self._rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def _interval(self) -> float:
        p = self._profile
        tps = p.tokens_per_second
        if tps <= 0:
            return 0.0
        if p.tokens_per_second_max > tps:
            tps = self._rng.uniform(tps, p.tokens_per_second_max)
        return 1.0 / tps
