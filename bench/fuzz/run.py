"""Fuzz the gateway with OpenAI's own OpenAPI spec (schemathesis): no request may give a server error.

    git clone https://github.com/openai/openai-openapi /tmp/openai-openapi     # the spec is not vendored
    python3 -m venv bench/.venv-fuzz && bench/.venv-fuzz/bin/pip install schemathesis
    .venv/bin/python bench/fuzz/run.py --spec /tmp/openai-openapi/openapi.yaml [--examples 100]

A gateway (this checkout) runs on 127.0.0.1 with models backed by the simulated providers of three wire
protocols (the openai one serving /responses natively: ``native_responses``); schemathesis generates
requests from the spec for the routes Stellwerk serves (chat completions, completions, responses,
embeddings, models) and checks ``not_a_server_error``. A 4xx for a request the spec
allows but a deployment cannot serve is fine; a 5xx is a bug.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

from stellwerk import load_dict
from stellwerk.gateway import Gateway
from stellwerk.sim import Profile, SimProvider

ROUTES = r"^/(chat/completions|completions|responses|embeddings|models|models/\{model\})$"
KEY = "sim-key-0123456789abcdef"
NAMES = ["gpt-4o", "gpt-4o-mini", "gpt-5", "o3-mini", "text-embedding-3-small", "gpt-3.5-turbo-instruct"]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path, help="openapi.yaml of github.com/openai/openai-openapi")
    parser.add_argument("--examples", type=int, default=50, help="test cases per operation")
    args = parser.parse_args()
    st = Path(__file__).parent.parent / ".venv-fuzz" / "bin" / "st"
    if not st.exists() or shutil.which(str(st)) is None:
        sys.exit("schemathesis missing: python3 -m venv bench/.venv-fuzz && bench/.venv-fuzz/bin/pip install "
                 "schemathesis")
    sims = {p: SimProvider(Profile(), protocol=p, api_key=KEY) for p in ("openai", "anthropic", "gemini")}
    for sim in sims.values():
        await sim.start("127.0.0.1", 0)
    bases = {"openai": sims["openai"].base_url, "anthropic": sims["anthropic"].base_url,
             "gemini": f"{sims['gemini'].base_url}/v1beta"}
    models = [{"name": name, "deployments": [
        {"id": f"{name}-{p}", "provider": p, "model": "sim-model", "api_base": base, "api_key": KEY}
        | ({"native_responses": True} if p == "openai" else {})  # /responses both natively and translated
        for p, base in bases.items()]} for name in NAMES]
    gateway = Gateway(load_dict({"models": models}, env={}))
    await gateway.start("127.0.0.1", 0)
    try:
        command = [str(st), "run", str(args.spec), "--url", f"http://127.0.0.1:{gateway.port}/v1",
                   "--include-path-regex", ROUTES, "--max-examples", str(args.examples),
                   "--checks", "not_a_server_error", "--suppress-health-check", "all", "--workers", "2"]
        process = await asyncio.create_subprocess_exec(*command)
        code = await process.wait()
    finally:
        await gateway.close(grace=1.0)
        for sim in sims.values():
            await sim.close(grace=0.5)
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
