"""Instructions per request of the key and limits stages, counted by callgrind in one process, piece by piece.

    .venv/bin/python bench/keys_instructions.py [--requests 2000] [--src SRC]
    .venv/bin/python bench/keys_instructions.py --cpu 9 --requests 20000     # CPU time instead, 9 rounds

``bench/instructions.py --auth`` gives the whole gateway's figure (keys off against on); this splits it
into pieces that can be changed one at a time, each the difference between a run of ``--requests``
iterations and one of twice as many, so start-up and imports cancel out:

- ``off``: a call built and passed through the pipeline to a route that answers at once, the answer's
  headers built and encoded (what every request does without keys);
- ``edge``: ``off`` plus the key read from ``Authorization``, hashed and looked up (``principal_of``);
- ``auth``: ``edge`` plus the ``auth`` stage (revocation, expiry, models, scopes);
- ``on``: ``auth`` plus the ``limits`` stage (admission with reservation, the ``x-ratelimit-*`` headers,
  settling on completion), with a key and its team that both have rpm, tpm, max_parallel and a budget;
- ``solo``: ``on`` with a key that has no team (what ``bench/instructions.py --auth`` declares).

The ledger (listener and writer) is ``bench/ledger_instructions.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
import functools
import sys
from stellwerk import Router
from stellwerk.gateway.errors import answer_headers
from stellwerk.http.messages import encode_head
from stellwerk.keys import Accounts
from stellwerk.keys.keyring import Keyring
from stellwerk.pipeline import Call, Operation
from stellwerk.pipeline.auth import Auth, principal_of
from stellwerk.pipeline.chain import compose
from stellwerk.pipeline.limits import Limits
from stellwerk.pipeline.reply import ChatResult
from stellwerk.state.records import Budget, KeyRecord, TeamRecord
from stellwerk.keys.secret import hash_secret
from stellwerk.telemetry import RequestFinished
from stellwerk.usage import Usage

mode, n = sys.argv[1], int(sys.argv[2])
router = Router.from_dict({"models": [{"name": "chat", "deployments": [
    {"id": "d", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1",
     "price": {"input_per_mtok": 1, "output_per_mtok": 2}}]}]})
secret = "sk-stw-" + "A" * 43
keyring = Keyring(master_key="sk-master")
budget = Budget(usd=1e9, period="1d")
keyring.replace([KeyRecord(id="k1", name="k", hash=hash_secret(secret), team=None if mode == "solo" else "t",
                           rpm=10**9, tpm=10**12,
                           max_parallel=1000, budget=budget)],
                [TeamRecord(name="t", rpm=10**9, tpm=10**12, max_parallel=1000, budget=budget)])
now = [1000.0]
accounts = Accounts(lambda: now[0], wall=lambda: 1.7e9 + now[0])
usage = Usage(20, 20)
record = RequestFinished(request_id="r", operation="chat", model="chat", deployment="d", status=200, attempts=(),
                         latency=0.01, ttft=None, stream=False, usage=usage, cost=1e-5)
raw = b'{"id":"x","object":"chat.completion","choices":[]}'

async def route(call):
    return ChatResult(data={}, raw=raw, model="chat", deployment="d", attempts=1, usage=usage, cost=1e-5,
                      latency=0.01, request_id=call.request_id, route="failover", record=record)

stages = {"auth": [Auth(keyring)]} if mode in ("auth", "on", "solo") else {}
if mode in ("on", "solo"):
    stages["limits"] = [Limits(keyring, accounts)]
handler = compose(route, stages)
headers = {"authorization": "Bearer " + secret, "content-type": "application/json"}
body = {"model": "chat", "messages": [{"role": "user", "content": "Say hello in one short sentence, please."}],
        "max_tokens": 64}

def one(i):
    principal = principal_of(keyring, headers) if mode != "off" else None
    call = router.call(Operation.CHAT, body, request_id="r%d" % i, headers=headers, principal=principal)
    coro = handler(call)
    try:
        coro.send(None)
    except StopIteration as stop:
        reply = stop.value
    encode_head(200, "application/json", answer_headers(reply, call), True, reply.head)
    now[0] += 0.001

for i in range(200):
    one(i)
if len(sys.argv) > 3:  # --cpu: this process's CPU time per request, in µs
    import time
    started = time.process_time()
    functools.reduce(lambda _, i: one(i), range(n), None)
    print((time.process_time() - started) / n * 1e6)
else:
    functools.reduce(lambda _, i: one(i), range(n), None)  # counted: callgrind collects inside reduce only
"""


def instructions(src: Path, *args: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        script = Path(tmp) / "keys.py"
        script.write_text(SCRIPT)
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(src)}
        subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
                        f"--callgrind-out-file={out}", sys.executable, str(script), *args],
                       check=True, capture_output=True, env=env)
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        assert match is not None
        return int(match.group(1))


def cpu(src: Path, mode: str, n: int) -> float:
    """CPU µs per request of ``mode`` in a process of its own (no valgrind)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "keys.py"
        script.write_text(SCRIPT)
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(src)}
        done = subprocess.run([sys.executable, str(script), mode, str(n), "cpu"], check=True, capture_output=True,
                              env=env, text=True)
        return float(done.stdout.strip().splitlines()[-1])


def cpu_rounds(src: Path, modes: list[str], n: int, rounds: int) -> None:
    """``--cpu``: each mode in turn per round (the order alternating), and what each adds over ``off`` in the
    same round: the median with the lowest and highest round."""
    per: dict[str, list[float]] = {mode: [] for mode in modes}
    for r in range(rounds):
        for mode in modes if r % 2 == 0 else list(reversed(modes)):
            per[mode].append(cpu(src, mode, n))
    for mode in modes:
        print(f"{mode:5} {statistics.median(per[mode]):8.2f} µs per request (median of {rounds} rounds)")
    for mode in modes:
        if mode != "off":
            added = sorted(a - b for a, b in zip(per[mode], per["off"], strict=True))
            print(f"{mode:5} adds {statistics.median(added):6.2f} µs ({added[0]:.2f} to {added[-1]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parent.parent / "src")
    parser.add_argument("--modes", default="off,edge,auth,on,solo")
    parser.add_argument("--cpu", type=int, default=0, metavar="ROUNDS",
                        help="instead of instructions: CPU time per request (no valgrind), in this many rounds")
    args = parser.parse_args()
    n = args.requests
    if args.cpu:
        cpu_rounds(args.src, args.modes.split(","), n, args.cpu)
        return
    counts = {}
    for mode in args.modes.split(","):
        counts[mode] = instructions(args.src, mode, str(n)) / n
        print(f"{mode:5} {counts[mode]:>10,.0f} instructions per request", flush=True)
    if "off" in counts:
        for mode in counts:
            if mode != "off":
                print(f"{mode:5} adds {counts[mode] - counts['off']:>8,.0f}")


if __name__ == "__main__":
    main()
