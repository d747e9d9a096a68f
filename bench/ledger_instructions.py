"""Instructions per spend record, counted by callgrind: the listener on the request path and the store's writer.

    .venv/bin/python bench/ledger_instructions.py [--batch 100 --batch 500]

The ledger is a listener: per finished request it builds one record, encodes it and appends one line to the
journal (``os.write``), on the event loop. A writer moves batches into the store off the loop (SQLite
here: a worker thread). ``bench/instructions.py --auth`` counts the listener within the gateway and keeps
the writer out of its window; this counts both in one process, each as the difference between a run with
200 records and one with 200 + ``--records``, so start-up and imports cancel out. Batch sizes: what a
gateway at ~200 and ~1,000 requests/s writes every 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
import asyncio, sys, tempfile, time
from stellwerk.keys.ledger import SpendLedger
from stellwerk.state.sqlite import SQLiteStore
from stellwerk.telemetry.events import RequestFinished
from stellwerk.usage import Usage
n, batch, store_it = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "store"
work = tempfile.mkdtemp()
store = SQLiteStore(work + "/s.db")
ledger = SpendLedger(store, work + "/s.db.journal", interval=3600, batch=10**9)
event = RequestFinished(request_id="b" * 24, operation="chat", model="chat", deployment="sim", status=200,
                        attempts=(), latency=0.0123, ttft=None, stream=False, usage=Usage(812, 96), cost=0.0012,
                        key_id="cfg_bench", team="search")
async def main():
    await ledger.start()
    for i in range(n):
        ledger(event)
        if (i + 1) % batch == 0:
            if store_it:
                await ledger.flush()
            else:
                ledger._pending.clear()
    await ledger.close()
asyncio.run(main())
"""


def instructions(*args: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        script = Path(tmp) / "ledger.py"
        script.write_text(SCRIPT)
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script),
                        *args], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        assert match is not None
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, action="append")
    args = parser.parse_args()
    print(f"{'batch':>6s} {'listener':>10s} {'writer':>10s} {'total':>10s}   (instructions per record)")
    for batch in args.batch or [100, 500]:
        per = {}
        for mode in ("journal", "store"):
            base = instructions("200", str(batch), mode)
            more = instructions(str(200 + args.records), str(batch), mode)
            per[mode] = (more - base) / args.records
        print(f"{batch:6d} {per['journal']:10,.0f} {per['store'] - per['journal']:10,.0f} {per['store']:10,.0f}",
              flush=True)


if __name__ == "__main__":
    main()
