"""CPU per request of `stellwerk serve` with limits in this process versus limits shared through Redis.

Two gateway processes run side by side for the whole run, on one ``sim-provider --profile fast``: ``local``
and ``redis`` (the same config plus ``server.redis``). Both enforce the same limits: a declared key with
rpm and tpm (far above what is sent) and a deployment with rpm and tpm, so a request of ``redis`` makes
one ADMIT (the key's and the deployment's windows together) and two reconciliations (which ride with the
next request's ADMIT). Requests are keep-alive, one at a time (``--concurrency 1``) or from that many
client threads.

Each round measures both gateways in turn (the order alternates between rounds), json then stream, over
``--requests`` after a warm-up: the gateway's CPU time from ``/proc/<pid>/schedstat`` (user + system, in
ns), the user/system split from ``/proc/<pid>/stat`` (10 ms ticks), and the CPU of the redis-server over
the same requests. The redis-server is this run's own (``redis-server`` on a free port, nothing else
uses it, so its CPU is this gateway's alone) unless ``--redis URL`` names another (then its CPU is not
reported). The added cost is taken per round (redis minus local of the same round) and shown as the
median with the lowest and highest round, next to the load average. ``--base`` adds a third gateway, the
``redis`` config run from another checkout (``PYTHONPATH``), measured in the same rounds: before and after.

    .venv/bin/python bench/cluster/cpu.py [--requests 2000] [--rounds 5] [--concurrency 1] [--redis URL]
                                          [--base ../main/src]
    .venv/bin/python bench/cluster/cpu.py --instructions [--requests 300] [--rounds 1] [--keep DIR]
                                          [--flush-delay 2] [--modes local,redis,base-local,base --base SRC]

``--instructions`` counts the gateway's instructions per request under callgrind instead (repeatable, but
blind to the kernel's side of the extra system calls), less what the process does per second while idle
(timers) times the seconds the requests took; ``--keep`` keeps the callgrind files for
``callgrind_annotate``. Under valgrind a request takes some 40 ms instead of 0.5 ms, so each request's
reconciliations go out alone after ``FLUSH_DELAY`` (50 ms) instead of riding with the next admission as
they do at full speed (an extra write, read and reply per request that the real gateway does not make);
``--flush-delay 2`` stretches that wait by the same factor, for the count of the real pattern.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from cluster.common import fast_sim, gateway, port_of
from harness.load import _WRK_DONE, chat_body
from harness.procs import free_port
from instructions import KEY, SERVE, _send, _total, _wait

CONFIG = """\
models:
  - name: chat
    deployments:
      - {{id: sim, provider: openai, model: sim-model, api_base: "{upstream}/v1", api_key: sk-sim,
         rpm: 1000000000, tpm: 1000000000, price: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}}}
server:
  master_key: sk-bench-master-0123456789
  store: sqlite:///{work}/bench-{mode}.db
{redis}keys:
  - name: bench
    key: {key}
    rpm: 1000000000
    tpm: 1000000000
"""


def write_config(work: Path, upstream: str, mode: str, redis: str, prefix: str) -> Path:
    config = work / f"stellwerk-{mode}.yaml"
    shared = f"  redis: {redis}\n  redis_prefix: '{prefix}'\n" if mode == "redis" else ""
    config.write_text(CONFIG.format(upstream=upstream, work=work, mode=mode, redis=shared, key=KEY))
    return config


class Cpu:
    """CPU time of one process: total (ns, schedstat) and user/system (s, stat ticks)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def read(self) -> tuple[float, float, float]:
        total = int(Path(f"/proc/{self.pid}/schedstat").read_text().split()[0]) / 1e9
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return total, int(fields[11]) / tick, int(fields[12]) / tick


def send(port: int, n: int, stream: bool, concurrency: int, wrk: int = 0, seconds: float = 0.0) -> int:
    """``n`` requests from ``concurrency`` client threads; or, with ``wrk`` connections, ``wrk`` for
    ``seconds`` (the load a busy gateway sees). The requests made."""
    if wrk:
        return _wrk(port, stream, wrk, seconds)
    if concurrency == 1:
        _send(port, n, stream)
        return n
    threads = [threading.Thread(target=_send, args=(port, n // concurrency, stream)) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return n // concurrency * concurrency


def _wrk(port: int, stream: bool, connections: int, seconds: float) -> int:
    """``wrk`` with ``connections`` keep-alive connections for ``seconds``, on one thread; the requests it
    completed (any error or non-200 answer stops the benchmark)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "wrk.lua"
        headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
        script.write_text("\n".join(['wrk.method = "POST"', f"wrk.body = [==[{chat_body(stream).decode()}]==]",
                                     *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())]) + _WRK_DONE)
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout=10s", "-s", str(script),
                              f"http://127.0.0.1:{port}/v1/chat/completions"],
                             capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    result = json.loads(line[6:])
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    if errors:
        raise SystemExit(f"wrk saw errors: {errors}")
    return int(result["requests"])


@contextmanager
def own_redis() -> Iterator[tuple[str, int]]:
    """A redis-server of this run's own on a free port: its URL and pid."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline:
                raise SystemExit("the benchmark's redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def per_request(before: tuple[float, ...], after: tuple[float, ...], n: int) -> tuple[float, ...]:
    """µs per request of each reading (e.g. :meth:`Cpu.read`'s total, user and system) over ``n`` requests."""
    return tuple((a - b) / n * 1e6 for a, b in zip(after, before, strict=True))


def spread(values: list[float]) -> str:
    """The median, and the lowest and highest value."""
    return f"{statistics.median(values):7.1f} ({min(values):.1f} to {max(values):.1f})"


def run_cpu(args: argparse.Namespace, work: Path, upstream: str, redis: str, redis_pid: int | None,
            prefix: str) -> None:
    n = args.requests
    rows: dict[tuple[str, bool], list[tuple[float, float, float, float]]] = {}
    load = [os.getloadavg()[0]]
    with ExitStack() as stack:
        procs = {mode: stack.enter_context(gateway(write_config(work, upstream, mode, redis, prefix)))
                 for mode in ("local", "redis")}
        if args.base:  # the same redis config, run from another checkout
            procs["base"] = stack.enter_context(gateway(work / "stellwerk-redis.yaml", src=args.base))
        for proc in procs.values():
            send(port_of(proc), 200, False, 1)
            send(port_of(proc), 200, True, 1)
        for r in range(args.rounds):
            order = list(procs) if r % 2 == 0 else list(reversed(procs))
            for mode in order:
                proc = procs[mode]
                cpu = Cpu(proc.pid)
                server = Cpu(redis_pid) if redis_pid is not None else None
                for stream in (False, True):
                    before, server_before = cpu.read(), server.read() if server else (0.0, 0.0, 0.0)
                    n = send(port_of(proc), args.requests, stream, args.concurrency, args.wrk, args.seconds)
                    after, server_after = cpu.read(), server.read() if server else (0.0, 0.0, 0.0)
                    total, user, system = per_request(before, after, n)
                    rows.setdefault((mode, stream), []).append(
                        (total, user, system, per_request(server_before, server_after, n)[0]))
            load.append(os.getloadavg()[0])
            print(f"round {r + 1}/{args.rounds} done, load {load[-1]:.1f}", file=sys.stderr, flush=True)

    what = (f"{args.seconds:g} s of wrk with {args.wrk} connections" if args.wrk
            else f"{n} requests, concurrency {args.concurrency}")
    print(f"CPU µs per request, median (lowest to highest) of {args.rounds} interleaved rounds of {what}; "
          f"load average {min(load):.1f} to {max(load):.1f}")
    for stream in (False, True):
        kind = "stream" if stream else "json"
        local, shared = rows[("local", stream)], rows[("redis", stream)]
        print(f"{kind}:")
        print(f"  gateway, limits local     {spread([x[0] for x in local])}   "
              f"user {statistics.median([x[1] for x in local]):.0f} / sys {statistics.median([x[2] for x in local]):.0f}")
        print(f"  gateway, limits in Redis  {spread([x[0] for x in shared])}   "
              f"user {statistics.median([x[1] for x in shared]):.0f} / sys {statistics.median([x[2] for x in shared]):.0f}")
        print(f"  added (per round)         {spread([s[0] - lo[0] for s, lo in zip(shared, local, strict=True)])}")
        if args.base:
            base = rows[("base", stream)]
            print(f"  --base, limits in Redis   {spread([x[0] for x in base])}   "
                  f"user {statistics.median([x[1] for x in base]):.0f} / sys {statistics.median([x[2] for x in base]):.0f}")
            print(f"  --base added (per round)  {spread([b[0] - lo[0] for b, lo in zip(base, local, strict=True)])}")
            if redis_pid is not None:
                print(f"  redis-server for --base   {spread([x[3] for x in base])}")
        if redis_pid is not None:
            print(f"  redis-server              {spread([x[3] for x in shared])}   "
                  f"(while the local gateway ran: {statistics.median([x[3] for x in local]):.1f})")


def run_instructions(args: argparse.Namespace, work: Path, upstream: str, redis: str, prefix: str) -> None:
    print(f"{'limits':7s} {'json':>12s} {'stream':>12s}   (instructions of the gateway per request, "
          f"best of {args.rounds})")
    results = {}
    for mode in args.modes.split(","):
        config = write_config(work, upstream, "local" if mode.endswith("local") else "redis", redis, prefix)
        src = args.base if mode.startswith("base") else ""
        results[mode] = [min(_callgrind(config, stream, args.requests, work / f"callgrind.{mode}.{int(stream)}",
                                        args.flush_delay, src) for _ in range(args.rounds)) for stream in (False, True)]
        print(f"{mode:7s} {results[mode][0]:12,.1f} {results[mode][1]:12,.1f}", flush=True)
    for mode, local in (("redis", "local"), ("base", "base-local")):
        if mode in results and local in results:
            added = [r - lo for r, lo in zip(results[mode], results[local], strict=True)]
            print(f"{'added' if mode == 'redis' else 'added (base)':7s} {added[0]:12,.1f} {added[1]:12,.1f}")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        for dump in work.glob("callgrind.*"):
            shutil.copy(dump, args.keep)


def _callgrind(config: Path, stream: bool, requests: int, prefix: Path, flush_delay: float = 0.0,
               src: str = "") -> float:
    port = free_port()
    serve = SERVE if not flush_delay else (f"import stellwerk.cluster.rounds as r; r.FLUSH_DELAY = {flush_delay}; "
                                           + SERVE)
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p", sys.executable,
                             "-c", serve, "serve", "--config", str(config), "--port", str(port)],
                            env={**os.environ, "PYTHONHASHSEED": "0", **({"PYTHONPATH": src} if src else {})},
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/healthz", 900)  # a loaded machine under valgrind
        _send(port, 50, stream)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        start = time.monotonic()
        _send(port, requests, stream)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        busy = time.monotonic() - start
        total = _total(f"{prefix}.{proc.pid}")
        # Timers run per second, not per request (heartbeat, the spend writer, stats): under valgrind on a
        # loaded machine a request takes long enough for them to add tens of thousands of instructions to it,
        # varying with the load. Their rate is taken while idle, and their share of the busy time removed.
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        start = time.monotonic()
        time.sleep(min(busy, 20.0))
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        idle = _total(f"{prefix}.{proc.pid}") / (time.monotonic() - start)
        print(f"  ({prefix.name}: {total / requests:,.0f} per request as counted, {busy:.0f} s; idle "
              f"{idle:,.0f} per s)", file=sys.stderr, flush=True)
        return (total - idle * busy) / requests
    finally:
        proc.terminate()
        proc.wait(30)


def cleanup(redis: str, prefix: str) -> None:
    import redis as redis_py

    client = redis_py.Redis.from_url(redis)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=0, help="default: 5, or 1 with --instructions")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--wrk", type=int, default=0, metavar="CONNECTIONS",
                        help="load from wrk with this many connections for --seconds, instead of client threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --wrk: seconds of each measurement")
    parser.add_argument("--base", default="", help="another checkout's src folder: its gateway with limits in "
                                                    "Redis is measured in the same rounds (before/after)")
    parser.add_argument("--redis", default="", help="a Redis URL (default: a redis-server of this run's own)")
    parser.add_argument("--instructions", action="store_true", help="instructions per request (callgrind)")
    parser.add_argument("--keep", default="", help="with --instructions: a folder for the callgrind files")
    parser.add_argument("--modes", default="local,redis",
                        help="with --instructions: which of local, redis, base-local and base (these two need --base) "
                             "to count")
    parser.add_argument("--flush-delay", type=float, default=0.0,
                        help="with --instructions: seconds a reconciliation waits for an admission to ride with "
                             "(cluster/rounds.py FLUSH_DELAY, 0.05); see the module docstring")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.instructions else 5)
    prefix = f"stellwerk-bench:{os.getpid()}:"
    with ExitStack() as stack:
        if args.redis:
            redis, redis_pid = args.redis, None
            stack.callback(cleanup, redis, prefix)
        else:
            redis, redis_pid = stack.enter_context(own_redis())
        upstream = stack.enter_context(fast_sim())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.instructions:
            run_instructions(args, work, upstream, redis, prefix)
        else:
            run_cpu(args, work, upstream, redis, redis_pid, prefix)


if __name__ == "__main__":
    main()
