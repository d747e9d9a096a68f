"""Where a proxied request's CPU goes: py-spy samples of `stellwerk serve` under load, sorted into stages.

    .venv/bin/pip install -e '.[bench]'          # py-spy
    .venv/bin/python bench/profile.py             # json and stream, 10 s each
    .venv/bin/python bench/profile.py --seconds 20 --modes json --raw /tmp/json.txt

The gateway runs pinned to CPU 1 against the minimal upstream (``harness/minimal_upstream.py``) with
``wrk -t1 -c16`` on CPU 0, like ``run.py``. py-spy samples it (1,000/s, non-blocking) and every sample is
put in one stage by its innermost frame that a rule below recognises (``STAGES``): a sample inside
``transport.write`` of the server counts as *client write*, one in the OpenAI adapter as *adapter*, one
with no Stellwerk frame below the event loop as *event loop*. The utime/stime split of the process over the
same seconds says how much of it is the kernel (system calls, loopback delivery), which py-spy charges to
the Python line that made the call. Prints a table; ``--raw`` keeps py-spy's collapsed stacks.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import load
from harness.procs import CLK_TCK, LOAD_CPU, Procs
from harness.targets import TARGETS, Upstream

Rule = Callable[[str], bool]


def _in(*parts: str) -> Rule:
    return lambda frame: any(p in frame for p in parts)


LOOP = "event loop (epoll, callbacks, task steps; no Stellwerk frame)"
STAGES: list[tuple[str, Rule]] = [
    (LOOP, _in("stellwerk/gateway/serve.py", "stellwerk/cli.py", "runners.py")),  # the frames below the loop
    ("events and stats (listeners, metrics, feed, lease/EWMA/budget bookkeeping)",
     _in("stellwerk/telemetry/", "lease.py", "Deployment.observe", "ewma.py", "budget.py", "Call.finished",
         "accounting.py", "breaker", "windows.py")),
    ("client write (response head + body, send syscall)", _in("_Connection._send", "encode_response", "head_parts")),
    ("server read + parse (httptools callbacks, Request)",
     lambda f: ("server.py" in f and ("data_received" in f or "_Connection.on_" in f or "_feed" in f))
     or "Request.__init__" in f),
    ("upstream request (head, send syscall)", _in("HTTPClient.request", "Pool.acquire")),
    ("upstream read + parse (client protocol, body)",
     _in("client.py", "http/connection.py", "http/response.py", "http/pool.py", "http/transport.py")),
    ("adapter: request build and answer parse", _in("stellwerk/providers/")),
    ("routing decision (table, planner, strategy)",
     _in("planner.py", "stellwerk/routing/strategies/", "table.py", "stellwerk/routing/task/")),
    ("stream forward (routing/stream.py)", _in("stellwerk/routing/stream.py")),
    ("front door + pipeline (Call, answer headers, JSON)",
     _in("stellwerk/gateway/", "stellwerk/pipeline/", "stellwerk/api/", "edge.py")),
    ("attempt loop, operations, router", _in("stellwerk/routing/")),
    ("server task (_run: handler call, keep-alive)", _in("server.py")),
]


def stage_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, rule in STAGES:
            if rule(frame):
                return name
    return LOOP


def breakdown(raw: Path) -> tuple[collections.Counter[str], int]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        counts[stage_of(stack)] += int(n)
        total += int(n)
    return counts, total


def _cpu_ticks(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def profile(mode: str, seconds: int, work: Path, raw_out: Path | None) -> None:
    stream = mode == "stream"
    with Procs(work / "logs") as procs:
        _, upstream = Upstream("minimal").start(procs)
        running = TARGETS["stellwerk"].start(procs, upstream, work)
        assert running.proc is not None
        pid = running.proc.pid
        load.saturate(running.url, stream, 2, work)  # warm-up
        script = load.wrk_script(work / "profile.lua", stream)
        wrk = subprocess.Popen(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c16", f"-d{seconds + 2}s", "-s",
                                str(script), running.url], stdout=subprocess.PIPE, text=True)
        raw = raw_out or work / f"{mode}.txt"
        before = _cpu_ticks(pid)
        subprocess.run([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                        str(pid), "-d", str(seconds), "-r", "1000", "--nonblocking", "--gil", "-f", "raw", "-o", str(raw)],
                       check=True, capture_output=True)
        after = _cpu_ticks(pid)
        out, _ = wrk.communicate()
    counts, total = breakdown(raw)
    user, system = ((a - b) / CLK_TCK for a, b in zip(after, before, strict=True))
    rps = next((line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")), "?")
    share = system / (user + system) if user + system else 0.0
    print(f"\n{mode}: {total} samples, {rps} req/s, CPU {user:.2f} s user + {system:.2f} s system "
          f"({share:.0%} kernel)")
    print("| stage | share of samples |\n|---|--:|")
    for name, n in counts.most_common():
        print(f"| {name} | {n / total:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--modes", default="json,stream")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here (one mode)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            profile(mode, args.seconds, Path(tmp), args.raw)


if __name__ == "__main__":
    main()
