"""The requests of a simulation, in order of arrival: generated from the scenario's traffic, or replayed from a trace.

Generated arrivals are a Poisson process whose rate follows the ``rps`` steps (an
exponential gap at the current step's rate; a gap that crosses into the next step is
drawn again from the step's start, which is exact for a memoryless process). Each request
draws its model by share, whether it streams, and its prompt and output tokens, all from
one ``random.Random(seed)``: the same seed gives the same requests.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from .scenario import ModelShare, Operation, Traffic
from .trace import read_trace
from .upstreams import MAX_OUTPUT_TOKENS

__all__ = ["Arrival", "arrivals"]


class Arrival(NamedTuple):
    time: float
    model: str
    operation: Operation
    stream: bool
    prompt_tokens: int
    output_tokens: int


def arrivals(traffic: Traffic, duration: float, models: Sequence[str], rng: random.Random) -> Iterator[Arrival]:
    """The requests arriving before ``duration``; ``models``: the config's, for traffic that names none."""
    if traffic.trace is not None:
        for item in read_trace(traffic.trace):
            if item.time >= duration:
                break
            yield item
        return
    shares = traffic.models or tuple(ModelShare(m, 1.0, "chat") for m in models)
    total = sum(s.share for s in shares)
    edges: list[float] = []  # cumulative shares: a draw u picks the first share whose edge is above it
    acc = 0.0
    for s in shares:
        acc += s.share / total
        edges.append(acc)
    last = len(shares) - 1
    prompt_tokens, output_tokens = traffic.prompt_tokens.sampler(), traffic.output_tokens.sampler()
    steps = traffic.steps
    t = 0.0
    step = 0
    while t < duration:
        end = steps[step + 1][0] if step + 1 < len(steps) else duration
        rps = steps[step][1]
        gap = rng.expovariate(rps) if rps > 0 else float("inf")
        if t + gap >= end:
            if step + 1 >= len(steps):
                return
            step += 1
            t = end
            continue
        t += gap
        share = shares[min(bisect_right(edges, rng.random()), last)]
        stream = share.operation == "chat" and rng.random() < traffic.stream_share
        prompt = max(1, round(prompt_tokens(rng)))
        output = min(MAX_OUTPUT_TOKENS, max(1, round(output_tokens(rng))))
        yield Arrival(t, share.model, share.operation, stream, prompt, output)
