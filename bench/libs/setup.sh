#!/usr/bin/env bash
# Install the library candidates into bench/.venv-libs (bench-only; never project dependencies).
# Stellwerk itself is not installed there (the scripts put src/ on PYTHONPATH, so the current code is
# measured), but its runtime dependencies from pyproject.toml are, since importing it needs them.
# sniffio: httpcore 1.0.x imports it on every request and falls back (after a failed import, i.e. a
# sys.path scan costing milliseconds) when it is absent; current anyio no longer pulls it in.
set -euo pipefail
BENCH="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$BENCH/.venv-libs"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$BENCH/../pyproject.toml" > "$VENV/stellwerk-requirements.txt"
"$VENV/bin/pip" install -q -r "$VENV/stellwerk-requirements.txt" \
    uvloop httptools orjson msgspec uvicorn granian aiohttp httpx sniffio
"$VENV/bin/pip" list 2>/dev/null | grep -iE '^(uvloop|httptools|orjson|msgspec|uvicorn|granian|aiohttp|httpx) '
