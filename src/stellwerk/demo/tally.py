"""What the demo has seen so far: client results, the gateway's request records, the providers' schedules.

:class:`Tally` is fed from three sides and only counts; the views render it.

* ``client(result)``: every request as the load generator saw it (success, latency, who served it);
* ``gateway(record)``: every :class:`~stellwerk.telemetry.RequestFinished` the router emits, whose
  failed attempts become failover events ("primary HTTP 503 → served by secondary");
* ``tick()``: the simulated providers' outage schedules, turned into "goes down" / "is back" events.

Recent events of the same kind are merged into one line with a count, so a
burst of failovers reads as one growing line instead of scrolling everything else away.
Times are seconds since the demo started, from the injected ``clock``.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stellwerk.errors import Attempt
from stellwerk.sim import Outage
from stellwerk.telemetry import Event as TelemetryEvent
from stellwerk.telemetry import RequestFinished

from .scenario import is_down, last_change
from .traffic import ClientResult

__all__ = ["TIMES", "Event", "Tally", "percentile"]

TIMES = "\N{MULTIPLICATION SIGN}"

_SAMPLES = 10_000
"""Latencies kept for percentiles (the most recent ones)."""
_TIMELINE = 600
"""Seconds of per-second traffic kept."""
_RECOVERY_STREAK = 3
"""Failed attempts in a row after which a deployment's next answer is reported as a recovery."""
_MERGE_WINDOW = 3.0
"""An event merges into a recent one with the same key if that one was seen within this many seconds..."""
_MERGE_LOOKBACK = 10
"""...and is among the last this many events."""


def percentile(samples: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q``-quantile (0..1) of ``samples``; None when there are none."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


@dataclass(slots=True)
class Event:
    first: float
    last: float
    source: str
    """``sim`` (a provider's schedule), ``gateway`` (router records) or ``client``."""
    text: str
    level: str = "info"
    """``info``, ``warn`` (a failover), ``bad`` (a failed request) or ``good`` (a recovery)."""
    key: str | None = None
    """Events with equal keys close together are merged."""
    count: int = 1


@dataclass(slots=True)
class _Streak:
    failures: int = 0
    since: float = 0.0


@dataclass(slots=True)
class ClientTotals:
    completed: int = 0
    ok: int = 0
    streams: int = 0
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=_SAMPLES))
    ttfts: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=_SAMPLES))
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def success_rate(self) -> float | None:
        return self.ok / self.completed if self.completed else None


class Tally:
    """Counters and events for the views; see the module docstring."""

    def __init__(
        self,
        deployments: Sequence[str],
        *,
        clock: Callable[[], float],
        schedules: Mapping[str, Sequence[Outage]] | None = None,
        max_events: int = 200,
    ) -> None:
        self.deployments = tuple(deployments)
        self.schedules = {name: tuple(outages) for name, outages in (schedules or {}).items() if outages}
        self.clock = clock
        self.client_totals = ClientTotals()
        self.failovers = 0
        """Answers served by a deployment other than the first one tried."""
        self.events: collections.deque[Event] = collections.deque(maxlen=max_events)
        self.event_count = 0
        """Events added so far (merges not counted), for readers that print each new one once."""
        self.latency: dict[str, collections.deque[float]] = {
            d: collections.deque(maxlen=_SAMPLES // 10) for d in self.deployments
        }
        self._seconds: collections.OrderedDict[int, collections.Counter[str]] = collections.OrderedDict()
        self._streaks: dict[str, _Streak] = {}
        self._down = {name: is_down(outages, 0.0) for name, outages in self.schedules.items()}

    # -- inputs ----------------------------------------------------------------------------------------------------
    def client(self, result: ClientResult) -> None:
        totals = self.client_totals
        totals.completed += 1
        totals.streams += result.stream
        if result.ok:
            totals.ok += 1
            totals.latencies.append(result.latency)
            if result.ttft is not None:
                totals.ttfts.append(result.ttft)
        else:
            error = result.error or f"HTTP {result.status}"
            totals.errors[error] += 1
            self._event(self.clock(), "client", f"request failed: {error}", "bad", key=f"client:{error}")
        second = int(result.started)
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = collections.Counter()
            while len(self._seconds) > _TIMELINE:
                self._seconds.popitem(last=False)
        bucket[result.deployment if result.ok and result.deployment else "-"] += 1

    def gateway(self, record: TelemetryEvent) -> None:
        """A listener of the gateway's :class:`RequestFinished` events."""
        if not isinstance(record, RequestFinished) or record.status == 499:
            return  # the client went away (the demo stopping): not the gateway's doing
        at = self.clock() - record.latency  # when the request reached the router: events read in causal order
        for attempt in record.attempts:
            streak = self._streaks.setdefault(attempt.deployment, _Streak())
            if streak.failures == 0:
                streak.since = at
            streak.failures += 1
        served = record.deployment
        if served is not None:
            samples = self.latency.get(served)
            if samples is not None:
                samples.append(record.latency)
            recovered = self._streaks.get(served)
            if recovered is not None and recovered.failures:
                if recovered.failures >= _RECOVERY_STREAK:
                    self._event(at, "gateway", f"{served} answers again after {max(0.0, at - recovered.since):.1f} s "
                                f"({recovered.failures} failed attempts)", "good")
                recovered.failures = 0
        if not record.attempts:
            return
        tried = ", ".join(_describe(a) for a in _merge_repeats(record.attempts))
        if served is None:
            self._event(at, "gateway", f"{tried} → no deployment answered (HTTP {record.status})", "bad", key=tried)
        elif record.attempts[0].deployment != served:
            self.failovers += 1
            self._event(at, "gateway", f"{tried} → served by {served}", "warn", key=f"{tried}>{served}")
        else:
            self._event(at, "gateway", f"{tried} → retried, served by {served}", "warn", key=f"{tried}>{served}")

    def tick(self) -> None:
        """Report outage windows opening and closing (call a few times a second)."""
        now = self.clock()
        for name, outages in self.schedules.items():
            down = is_down(outages, now)
            if down == self._down[name]:
                continue
            self._down[name] = down
            at = now - (last_change(outages, now) or 0.0)
            if down:
                window = next(o for o in outages if o.active(now))
                how = f"HTTP {window.status}" if window.mode == "status" else window.mode
                self._event(at, "sim", f"{name} goes down ({how} for {window.duration:g} s)", "bad")
            else:
                self._event(at, "sim", f"{name} is back up", "good")

    # -- reading ---------------------------------------------------------------------------------------------------
    def down(self, deployment: str) -> bool:
        """Whether the deployment's simulated provider is in an outage window right now."""
        return self._down.get(deployment, False)

    def served(self, second: int) -> collections.Counter[str]:
        """Who answered the requests sent in second ``second`` of the demo (``-`` counts failed requests)."""
        return self._seconds.get(second) or collections.Counter()

    def timeline(self, deployment: str, width: int) -> tuple[int, list[tuple[float | None, bool]]]:
        """Up to ``width`` seconds before the last one (still being answered), oldest first.

        Returns the first second shown and, per second, the deployment's share of the answers
        to requests sent in that second (None: no answers) and whether it was down by schedule.
        """
        now = int(self.clock()) - 1
        first = max(0, now - width)
        outages = self.schedules.get(deployment, ())
        cells: list[tuple[float | None, bool]] = []
        for second in range(first, now):
            bucket = self.served(second)
            total = sum(bucket.values())
            share = bucket[deployment] / total if total else None
            cells.append((share, is_down(outages, second + 0.5)))
        return first, cells

    def _event(self, at: float, source: str, text: str, level: str, key: str | None = None) -> None:
        if key is not None:
            for recent in itertools.islice(reversed(self.events), _MERGE_LOOKBACK):
                if recent.key == key and abs(at - recent.last) <= _MERGE_WINDOW:
                    recent.count += 1
                    recent.first, recent.last = min(recent.first, at), max(recent.last, at)
                    return
        self.events.append(Event(at, at, source, text, level, key))
        self.event_count += 1


def _merge_repeats(attempts: Sequence[Attempt]) -> list[tuple[Attempt, int]]:
    """Consecutive attempts on one deployment with the same failure, as (attempt, times)."""
    merged: list[tuple[Attempt, int]] = []
    for attempt in attempts:
        if merged and merged[-1][0].deployment == attempt.deployment and _failure(merged[-1][0]) == _failure(attempt):
            merged[-1] = (merged[-1][0], merged[-1][1] + 1)
        else:
            merged.append((attempt, 1))
    return merged


def _failure(attempt: Attempt) -> str:
    return f"HTTP {attempt.status}" if attempt.status else attempt.reason


def _describe(item: tuple[Attempt, int]) -> str:
    attempt, times = item
    return f"{attempt.deployment} {_failure(attempt)}" + (f" {TIMES}{times}" if times > 1 else "")
