#!/usr/bin/env bash
# Install the library candidates into bench/.venv-libs (bench-only; never project dependencies).
# Stellwerk itself is not installed there: the scripts put src/ on PYTHONPATH.
set -euo pipefail
BENCH="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$BENCH/.venv-libs"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q uvloop httptools orjson msgspec pyyaml \
    uvicorn granian aiohttp httpx
"$VENV/bin/pip" list 2>/dev/null | grep -iE '^(uvloop|httptools|orjson|msgspec|uvicorn|granian|aiohttp|httpx) '
