"""How fast the policy simulator is: 100,000 requests with a 10-minute outage, in CPU seconds.

    .venv/bin/python bench/simulate/speed.py                  # the issue's case: 100,000 requests
    .venv/bin/python bench/simulate/speed.py --requests 20000 --profile

The config is examples/simulate/failover.yaml (OpenAI primary, Anthropic backup, failover); the
scenario runs for 20 minutes of virtual time at the rate that makes ``--requests`` requests, half of
them streamed, with the primary down from minute 5 to minute 15 and a little flaky otherwise (the
traffic of examples/simulate/outage.yaml). CPU time is this process's (``time.process_time``), so
other load on the machine inflates it less than wall time; both are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import time
from pathlib import Path

from stellwerk.simulate import Scenario, load_config, simulate

ROOT = Path(__file__).resolve().parent.parent.parent
DURATION = 1200.0


def scenario(requests: int) -> Scenario:
    return Scenario.from_dict({
        "duration": DURATION,
        "traffic": {"rps": requests / DURATION, "stream_share": 0.5, "prompt_tokens": {"median": 400, "p99": 6000},
                    "output_tokens": {"median": 150, "p99": 800}},
        "deployments": {
            "primary": {"ttft": {"median": 0.4, "p99": 2.0}, "tokens_per_second": 80,
                        "errors": {"5xx": 0.01, "429": 0.005, "cut": 0.002}, "outages": [{"start": 300, "end": 900}]},
            "backup": {"ttft": {"median": 0.6, "p99": 3.0}, "tokens_per_second": 60},
        },
    }, source="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print the 25 most expensive functions")
    args = parser.parse_args()
    config = load_config(ROOT / "examples" / "simulate" / "failover.yaml")
    wall, cpu = time.perf_counter(), time.process_time()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    report = simulate(config, scenario(args.requests), seed=args.seed)
    if profiler is not None:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = report["requests"]
    print(f"python {platform.python_version()}, {n:,} requests in {DURATION:g} s of virtual time, "
          f"availability {report['availability']:.4f}, outage detected after {report['outages'][0]['detected_after']} s")
    print(f"CPU {cpu:.1f} s ({cpu / n * 1e6:.0f} µs per request), wall {wall:.1f} s")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
