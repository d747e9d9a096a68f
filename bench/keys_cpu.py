"""CPU per request that auth and limits add to `stellwerk serve`, in interleaved rounds (issue 10's goal).

Two gateway processes run side by side for the whole run, on one ``sim-provider --profile fast``:
``ledger`` (a SQLite store without a master key: the spend ledger alone) and ``keys`` (the same plus
``server.master_key`` and a declared key with rpm, tpm, max_parallel and a budget, which every request
sends: auth, admission with reservation, the ``x-ratelimit-*`` headers and settling). ``--base SRC`` adds
the same two configs run from another checkout (``PYTHONPATH``): before and after, in the same rounds.

Each round measures every gateway in turn (the order alternates between rounds), json then stream, over
``--requests`` keep-alive requests (one at a time, or from ``--concurrency`` client threads; or ``--wrk``
connections for ``--seconds``): the gateway's CPU time from ``/proc/<pid>/schedstat``. What auth and
limits add is taken per round (``keys`` minus ``ledger`` of the same round, so slow phases of a noisy
machine cancel) and shown as the median with the lowest and highest round.

    .venv/bin/python bench/keys_cpu.py [--requests 2000] [--rounds 7] [--concurrency 1] [--base ../before/src]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cluster.common import fast_sim, gateway, port_of
from cluster.cpu import Cpu, per_request, send, spread
from harness.targets import stellwerk_yaml
from instructions import AUTH, LEDGER


def write_config(work: Path, upstream: str, mode: str) -> Path:
    config = work / f"stellwerk-{mode}.yaml"
    folder = work / mode
    folder.mkdir(exist_ok=True)
    if mode.endswith("keys"):
        config.write_text(AUTH.format(work=folder) + stellwerk_yaml(upstream))
    else:
        config.write_text(stellwerk_yaml(upstream, server=LEDGER.format(work=folder)))
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--wrk", type=int, default=0, metavar="CONNECTIONS",
                        help="load from wrk with this many connections for --seconds, instead of client threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --wrk: seconds of each measurement")
    parser.add_argument("--base", default="", help="another checkout's src folder, measured in the same rounds")
    args = parser.parse_args()
    rows: dict[tuple[str, bool], list[float]] = {}
    user: dict[tuple[str, bool], list[float]] = {}
    """User-mode CPU µs per request (``/proc/<pid>/stat``, clock ticks): what auth and limits add is user-mode
    work (no system call of their own), so its difference is not blurred by the kernel's network stack."""
    load = [os.getloadavg()[0]]
    with ExitStack() as stack:
        upstream = stack.enter_context(fast_sim())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        modes = ["ledger", "keys"] + (["base-ledger", "base-keys"] if args.base else [])
        procs = {mode: stack.enter_context(gateway(write_config(work, upstream, mode),
                                                   src=args.base if mode.startswith("base") else ""))
                 for mode in modes}
        for proc in procs.values():  # warm-up: connections, caches, first-use imports
            send(port_of(proc), 200, False, 1)
            send(port_of(proc), 200, True, 1)
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else reversed(modes):
                proc = procs[mode]
                cpu = Cpu(proc.pid)
                for stream in (False, True):
                    before = cpu.read()
                    n = send(port_of(proc), args.requests, stream, args.concurrency, args.wrk, args.seconds)
                    total, user_mode, _ = per_request(before, cpu.read(), n)
                    rows.setdefault((mode, stream), []).append(total)
                    user.setdefault((mode, stream), []).append(user_mode)
            load.append(os.getloadavg()[0])
            print(f"round {r + 1}/{args.rounds} done, load {load[-1]:.1f}", file=sys.stderr, flush=True)

    what = (f"{args.seconds:g} s of wrk with {args.wrk} connections" if args.wrk
            else f"{args.requests} requests, concurrency {args.concurrency}")
    print(f"CPU µs per request, median (lowest to highest) of {args.rounds} interleaved rounds of {what}; "
          f"load average {min(load):.1f} to {max(load):.1f}")
    for stream in (False, True):
        print("stream:" if stream else "json:")
        for prefix in ("", "base-") if args.base else ("",):
            ledger, keys = rows[(prefix + "ledger", stream)], rows[(prefix + "keys", stream)]
            label = "--base " if prefix else ""
            print(f"  {label + 'the ledger alone':26s} {spread(ledger)}")
            print(f"  {label + 'keys, limits, ledger':26s} {spread(keys)}")
            print(f"  {label + 'auth and limits add':26s} {spread([k - le for k, le in zip(keys, ledger, strict=True)])}"
                  "   (per round)")
            ledger_user, keys_user = user[(prefix + "ledger", stream)], user[(prefix + "keys", stream)]
            print(f"  {label + 'user mode: ledger, keys':26s} {spread(ledger_user)}   {spread(keys_user)}")
            print(f"  {label + 'user mode: auth, limits add':26s} "
                  f"{spread([k - le for k, le in zip(keys_user, ledger_user, strict=True)])}   (per round)")
        if args.base:
            now, before = rows[("keys", stream)], rows[("base-keys", stream)]
            print(f"  {'keys now - --base':26s} {spread([a - b for a, b in zip(now, before, strict=True)])}")


if __name__ == "__main__":
    main()
