"""A gateway without a task model starts without the classifier's heavy imports (start-up time, RSS).

In a child process: the test process has imported them already."""

from __future__ import annotations

import subprocess
import sys

_PROGRAM = """
import asyncio, sys
from stellwerk.compose import load_dict
from stellwerk.gateway.serve import Gateway

config = load_dict({"models": [
    {"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "m",
                                      "api_base": "http://127.0.0.1:9/v1", "api_key": "sk-x"}]},
]}, env={})

async def main():
    gateway = Gateway(config)
    await gateway.start("127.0.0.1", 0)
    await gateway.close(grace=0.1)

asyncio.run(main())
print(" ".join(sorted(m for m in ("numpy", "tokenizers", "safetensors") if m in sys.modules)))
"""


def test_a_gateway_without_a_task_model_does_not_import_numpy_or_tokenizers() -> None:
    out = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at start-up without a task model: {out.stdout.strip()}"
