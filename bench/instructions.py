"""Instructions per proxied request of `stellwerk serve`, counted by callgrind: repeatable on a noisy machine.

    .venv/bin/python bench/instructions.py                          # this checkout
    .venv/bin/python bench/instructions.py --src ../base/src --src src --requests 300
    .venv/bin/python bench/instructions.py --auth                  # keys and limits off, then on
    .venv/bin/python bench/instructions.py --auth --ledger         # the spend ledger alone, then keys too
    .venv/bin/python bench/instructions.py --cache off,miss,hit     # the response cache (issue 13)
    .venv/bin/python bench/instructions.py --nginx                 # also nginx (tuned), for the ratio

Each ``--src`` is a checkout's ``src`` folder, run by this venv's Python under
``valgrind --tool=callgrind``, against one simulated upstream (``sim-provider
--profile fast``). After a warm-up the counters are zeroed (``callgrind_control
-z``), ``--requests`` keep-alive requests are sent from a native client, and
the counters are dumped (``callgrind_control -d``): the instructions of the
gateway process divided by the requests. With ``--auth`` each checkout is
measured twice: as is, and with ``server.master_key``, a SQLite store, and a
declared key with rpm, tpm, max_parallel and a budget, which every request
sends (auth, limits with reservation and the spend ledger on the path); with
``--ledger`` the first of the two has the SQLite store without a master key
(the spend ledger alone, as the ``stellwerk-ledger`` target of ``run.py``), so
the difference is auth and limits alone. Every request sends ``Authorization:
Bearer`` either way, as SDKs do, so both sides parse the same headers. The
ledger's writer is kept out of the measured requests (``spend_flush_interval:
60``): under callgrind a 0.5 s batch holds a handful of records, so its fixed
cost would swamp the figure and vary with the machine's load. The writer's
cost per record at real batch sizes is ``bench/ledger_instructions.py``.
``--cache`` measures the response cache: ``off`` (no model caches), ``miss``
(exact mode, every request a new question: a lookup, the proxied answer and
its store) and ``hit`` (exact mode, the same question every time: answered
from the memory cache). Every variant sends a different question per request,
except ``hit``. ``--nginx`` also counts nginx (``harness.targets.nginx_conf``, the
tuned configuration of run.py, one process: ``master_process off``) on the
same upstream and prints Stellwerk's counts as a multiple of nginx's. nginx's
count is user-space instructions only, like Stellwerk's: neither includes the
kernel's share of a system call. The client and the upstream are not
counted. Instruction counts are not time (a cache miss costs more than an
add), but they are the same from run to run, so a small change shows.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness.load import chat_body
from harness.procs import free_port
from harness.targets import nginx_conf, stellwerk_yaml

SERVE = "import sys; from stellwerk.cli import main; sys.exit(main())"


def _wait(port: int, path: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port} within {seconds:g}s")


@contextmanager
def fast_sim() -> Iterator[str]:
    """``sim-provider --profile fast`` (20 output tokens); yields its base URL."""
    port = free_port()
    stellwerk = Path(sys.executable).parent / "stellwerk"
    sim = subprocess.Popen([str(stellwerk), "sim-provider", "--host", "127.0.0.1", "--port", str(port),
                            "--profile", "fast", "--output-tokens", "20"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/v1/models", 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        sim.terminate()
        sim.wait(10)


KEY = "sk-bench-0123456789abcdef0123"
AUTH = f"""\
server:
  master_key: sk-bench-master-0123456789
  store: sqlite:///{{work}}/bench.db
  spend_flush_interval: 60
keys:
  - name: bench
    key: {KEY}
    rpm: 1000000000
    tpm: 1000000000
    max_parallel: 1000
    budget: {{{{usd: 1000000, period: 1d}}}}
"""
LEDGER = """\
server:
  store: sqlite:///{work}/bench.db
  spend_flush_interval: 60
"""
"""``server:`` lines of the spend ledger alone (``--ledger``)."""


def _send(port: int, n: int, stream: bool, *, same: bool = False) -> None:
    """``n`` requests on one keep-alive connection, each with ``Authorization: Bearer`` as every SDK sends it
    (the OpenAI SDK requires a key even when the gateway checks none), so a gateway with keys off parses the
    same headers as one with keys on."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = chat_body(stream)
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    for i in range(n):
        unique = body if same else body.replace(b"shipment 4711", b"shipment %d" % (i + os.getpid() * 10_000 + n))
        conn.request("POST", "/v1/chat/completions", unique, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {data[:200]!r}")


def _total(dump_prefix: str) -> int:
    files = sorted(glob.glob(dump_prefix + "*"), key=os.path.getmtime)
    text = Path(files[-1]).read_text()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if match is None:
        raise SystemExit(f"no totals in {files[-1]}")
    return int(match.group(1))


def measure(src: Path, upstream: str, requests: int, stream: bool, work: Path, auth: bool = False,
            server: str = "", cache: str = "off", wait: float = 180) -> float:
    """Instructions per request; ``auth``: keys, limits and the ledger on; ``server``: YAML appended to the
    config (a ``server:`` section; not together with ``auth``, which writes its own); ``cache``: off, miss or
    hit (the model's response cache)."""
    config = work / "stellwerk.yaml"
    for old in work.glob("bench.db*"):
        old.unlink()
    cache_line = "" if cache == "off" else "\n    cache: {mode: exact}"  # off: a config older trees accept
    config.write_text((AUTH.format(work=work) if auth else "") + stellwerk_yaml(upstream, model=cache_line,
                                                                                 server=server))
    port = free_port()
    prefix = str(work / f"callgrind.{src.parent.name}.{int(stream)}.{int(auth)}.{cache}")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p", sys.executable, "-c", SERVE,
            "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/healthz", wait)
        same = cache == "hit"
        _send(port, 50, stream, same=same)  # warm-up: connections, caches, first-use imports
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        _send(port, requests, stream, same=same)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        return _total(f"{prefix}.{proc.pid}") / requests
    finally:
        proc.terminate()
        proc.wait(30)


def measure_nginx(upstream: str, requests: int, stream: bool, work: Path, wait: float = 60) -> float:
    """Instructions per request of nginx (one process, tuned config) proxying to ``upstream``."""
    prefix = work / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port, upstream, single_process=True))
    out = str(work / f"callgrind.nginx.{int(stream)}")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "nginx", "-p", str(prefix),
            "-e", str(prefix / "error.log"), "-c", str(conf)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/v1/models", wait)
        _send(port, 50, stream)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        _send(port, requests, stream)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        return _total(f"{out}.{proc.pid}") / requests
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, help="a checkout's src/ (repeatable; default ./src)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--auth", action="store_true", help="also measure each checkout with keys and limits on")
    parser.add_argument("--ledger", action="store_true",
                        help="with --auth: measure the spend ledger alone instead of nothing as the 'off' side")
    parser.add_argument("--wait", type=float, default=180, help="seconds a gateway under valgrind may take to start")
    parser.add_argument("--cache", default="off", help="response cache variants: off, miss, hit (comma-separated)")
    parser.add_argument("--nginx", action="store_true", help="also count nginx (tuned) and print the ratios")
    parser.add_argument("--keep", type=Path, help="keep the callgrind dumps in this folder (for callgrind_annotate)")
    parser.add_argument("--modes", default="json,stream", help="json, stream or both (default)")
    args = parser.parse_args()
    variants = args.cache.split(",")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    sources = [s.resolve() for s in (args.src or [Path(__file__).parent.parent / "src"])]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        modes = args.modes.split(",")
        with fast_sim() as upstream:
            print(f"{'src':40s} {'cache':6s} {'json':>12s} {'stream':>12s}   "
                  f"(instructions per request, {args.requests} requests)")
            nginx: tuple[float, float] | None = None
            if args.nginx:
                nginx = (measure_nginx(upstream, args.requests, False, work) if "json" in modes
                         else float("nan"),
                         measure_nginx(upstream, args.requests, True, work) if "stream" in modes
                         else float("nan"))
                print(f"{'nginx (tuned)':40s} {'':6s} {nginx[0]:12,.0f} {nginx[1]:12,.0f}", flush=True)
            for src in sources:
                for auth in (False, True) if args.auth else (False,):
                    server = LEDGER.format(work=work) if args.ledger and not auth else ""
                    for cache in variants:
                        json = measure(src, upstream, args.requests, False, work, auth, server=server,
                                       cache=cache, wait=args.wait) if "json" in modes else float("nan")
                        streamed = measure(src, upstream, args.requests, True, work, auth, server=server,
                                           cache=cache, wait=args.wait) if "stream" in modes else float("nan")
                        label = f"{src}{' +auth' if auth else ' +ledger' if server else ''}"
                        ratio = f"   = {json / nginx[0]:.1f}x / {streamed / nginx[1]:.1f}x nginx" if nginx else ""
                        print(f"{label:40s} {cache:6s} {json:12,.0f} {streamed:12,.0f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
