"""Counters of what the simulated provider did, and their frozen snapshot."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from stellwerk.sim.behaviour import Outcome

__all__ = ["SimStats", "StatsCounter"]


@dataclass(frozen=True, slots=True)
class SimStats:
    """A snapshot of the counters since the start (or the last reset).

    ``requests`` counts every API request (not ``/_sim/...``); each is counted once more
    under exactly one outcome (``invalid`` covers bad JSON/parameters, failed
    auth and unknown routes or models), except answered info requests (model lists, token
    counts), which count only as requests. ``streams`` counts streamed chat requests.
    """

    requests: int = 0
    streams: int = 0
    ok: int = 0
    error: int = 0
    rate_limited: int = 0
    hang: int = 0
    drop: int = 0
    stream_error: int = 0
    malformed: int = 0
    refused: int = 0
    context_length: int = 0
    content_policy: int = 0
    invalid: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class StatsCounter:
    """Mutable counters owned by one :class:`~stellwerk.sim.server.SimProvider`."""

    __slots__ = ("_outcomes", "invalid", "requests", "streams")

    def __init__(self) -> None:
        self.requests = 0
        self.streams = 0
        self.invalid = 0
        self._outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)

    def outcome(self, outcome: Outcome) -> None:
        self._outcomes[outcome] += 1

    def snapshot(self) -> SimStats:
        counts = {o.value: n for o, n in self._outcomes.items()}
        return SimStats(requests=self.requests, streams=self.streams, invalid=self.invalid, **counts)
