"""Time one routing decision: ``rank()`` per strategy, alone and after the filters, for 2, 10 and 100 candidates.

    .venv/bin/python bench/routing_decision.py            # prints a markdown table
    .venv/bin/python bench/routing_decision.py --quick    # shorter runs

Each cell is the best of several repeats, in µs of CPU time per decision (process
time, so other load on the machine inflates it less than wall-clock time would). The filters are
the four the router runs before ranking (health, capability, limits, tags).
The last column divides the per-candidate time at 100 candidates by the one at
10: about 1 (or less) means the decision grows linearly with the candidates.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from functools import partial

from stellwerk.routing.strategies import (
    CapabilityFilter,
    HealthFilter,
    LimitsFilter,
    TagFilter,
    build_strategy,
    strategy_names,
)
from stellwerk.routing.strategies.base import Candidate, Filter, RequestFacts, Strategy

SIZES = (2, 10, 100)
FILTERS: tuple[Filter, ...] = (HealthFilter(), CapabilityFilter(), LimitsFilter(), TagFilter())
REQUEST = RequestFacts(model="chat", prompt_tokens=800, expected_output_tokens=300, user="user-42",
                       headers={"x-stellwerk-tags": "region=eu"})


def candidates(n: int, rng: random.Random) -> list[Candidate]:
    return [
        Candidate(
            id=f"d{i}", index=i, weight=rng.choice((1.0, 2.0, 5.0)), in_flight=rng.randrange(4),
            latency=rng.uniform(0.2, 2.0), ttft=rng.uniform(0.05, 0.5), tokens_per_second=rng.uniform(20, 150),
            observations=50, input_per_mtok=rng.choice((0.15, 0.5, 2.5)), output_per_mtok=rng.choice((0.6, 1.5, 10.0)),
            rpm_limit=1000, rpm_used=rng.randrange(900), tpm_limit=1_000_000, tpm_used=rng.randrange(900_000),
            context_window=128_000, tags={"region": "eu"},
        )
        for i in range(n)
    ]


def options_for(name: str, n: int) -> dict[str, object] | None:
    if name != "ab":
        return None
    half = n // 2
    return {"variants": [
        {"name": "control", "deployments": [f"d{i}" for i in range(half)], "percent": 90},
        {"name": "canary", "deployments": [f"d{i}" for i in range(half, n)], "percent": 10},
    ]}


def per_call(fn: Callable[[], object], budget: float, repeats: int = 25) -> float:
    """Seconds per call: the best of ``repeats`` short runs (short, so that some fall between
    bursts of other load on a shared machine), all together about ``budget`` seconds."""
    number = 1
    while True:
        start = time.process_time()
        for _ in range(number):
            fn()
        if time.process_time() - start > budget / repeats:
            break
        number *= 2
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best


def decide(strategy: Strategy, cands: Sequence[Candidate]) -> object:
    kept = list(cands)
    for f in FILTERS:
        kept, _ = f.apply(kept, REQUEST)
    return strategy.rank(kept, REQUEST)


def machine_speed() -> float:
    """CPU seconds for 10 million empty loop iterations: a yardstick for reading the table
    (about 0.15 s on a current desktop with Python 3.11)."""
    return per_call(_empty_loop, 2.0, repeats=10)


def _empty_loop() -> None:
    for _ in range(10_000_000):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    budget = 0.1 if parser.parse_args().quick else 0.5
    print(f"Python loop yardstick on this machine: {machine_speed():.2f} s per 10M empty iterations "
          "(~0.15 s on a current desktop; scale the table by the ratio).\n")
    sizes = " | ".join(f"{n}" for n in SIZES)
    print(f"| strategy | rank µs: {sizes} | filters + rank µs: {sizes} | per-candidate 100 / 10 |")
    print("|---|" + "---:|" * (2 * len(SIZES) + 1))
    for name in strategy_names():
        rank_us, full_us = [], []
        for n in SIZES:
            rng = random.Random(n)
            cands = candidates(n, rng)
            strategy = build_strategy(name, options_for(name, n), rng=rng, clock=time.monotonic)
            rank_us.append(per_call(partial(strategy.rank, cands, REQUEST), budget) * 1e6)
            full_us.append(per_call(partial(decide, strategy, cands), budget) * 1e6)
        growth = (full_us[2] / 100) / (full_us[1] / 10)
        cells = " | ".join(f"{x:.1f}" for x in rank_us + full_us)
        print(f"| `{name}` | {cells} | {growth:.2f} |")


if __name__ == "__main__":
    main()
