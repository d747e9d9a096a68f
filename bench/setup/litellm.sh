#!/usr/bin/env bash
# Install LiteLLM's proxy into bench/.venv-litellm (a bench-only venv, never a project dependency).
# `pip install "litellm[proxy]==1.110.2"` fails (the extra pins sub-packages the index lacks), so we
# install litellm itself plus the extra's other requirements; see litellm_reqs.py.
set -euo pipefail
BENCH="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$BENCH/.venv-litellm"
VERSION="${LITELLM_VERSION:-1.110.2}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/litellm" ] && "$VENV/bin/pip" show litellm 2>/dev/null | grep -qx "Version: $VERSION"; then
    echo "litellm $VERSION already in $VENV"
    exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q packaging
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/pip" download -q --no-deps -d "$tmp" "litellm==$VERSION"
"$VENV/bin/python" "$BENCH/setup/litellm_reqs.py" "$tmp"/litellm-*.whl > "$tmp/requirements.txt"
"$VENV/bin/pip" install -q "litellm==$VERSION" -r "$tmp/requirements.txt"
echo "litellm $VERSION installed in $VENV"
