"""Per-call cost of each observability listener on one finished request: time, and instructions under callgrind.

    .venv/bin/python bench/listeners.py time 100000             # ns per call, best of 5 tight loops
    valgrind --tool=callgrind --callgrind-out-file=cg.%p .venv/bin/python bench/listeners.py metrics 20000
    (and ``none``, ``feed``, ``access_log``: instructions per call = (total - total of none) / 20000)
"""

from __future__ import annotations

import io
import sys
import time
import timeit

from stellwerk import Router
from stellwerk.telemetry import RequestFinished
from stellwerk.telemetry.access_log import AccessLog
from stellwerk.telemetry.feed import LiveFeed
from stellwerk.telemetry.prometheus import Metrics
from stellwerk.usage import Usage

r = Router.from_dict({"models": [{"name": "chat", "deployments": [
    {"id": "sim", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:1/v1"}]}]})
rec = RequestFinished(request_id="0123456789abcdef01234567", operation="chat", model="chat", deployment="sim",
                      status=200, attempts=(), latency=0.0123, ttft=None, stream=False, usage=Usage(12, 20),
                      cost=0.0000138, route="failover: sim (listed first)")


class Null(io.RawIOBase):
    def write(self, b: object) -> int:
        return len(b)  # type: ignore[arg-type]

    def writable(self) -> bool:
        return True


listeners = {"metrics": Metrics(lambda: r.table), "feed": LiveFeed(lambda: r.table, wall_clock=time.time),
             "access_log": AccessLog(Null(), wall_clock=time.time)}
listeners["access_log"]._flush_pending = True  # type: ignore[attr-defined]  # no event loop: never schedule a flush
which, n = sys.argv[1], int(sys.argv[2])
if which == "time":
    for name, fn in listeners.items():
        best = min(timeit.repeat(lambda fn=fn: fn(rec), number=n, repeat=5)) / n * 1e9  # type: ignore[misc]
        print(f"{name:12s} {best:8.0f} ns per call (best of 5 x {n})")
else:
    fn = listeners.get(which, lambda e: None)
    for _ in range(n):
        fn(rec)
