#!/usr/bin/env bash
# Set up the benchmark tools and run the benchmarks; see bench/README.md.
#
#   bench/run.sh                 # set up, then gateway overhead + library choice, update bench/RESULTS.md
#   bench/run.sh gateway [ARGS]  # only bench/run.py (ARGS passed on, e.g. --duration 5 --no-write)
#   bench/run.sh libs [ARGS]     # only bench/libs/run.py
#   bench/run.sh setup           # only install wrk/nginx/h2load and the bench venvs
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
what="${1:-all}"
[ $# -gt 0 ] && shift

setup() {
    if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null || ! command -v h2load >/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            (apt-get update -qq && apt-get install -y -qq wrk nginx nghttp2-client >/dev/null) \
                || echo "note: apt-get install wrk nginx nghttp2-client failed; missing tools are reported as n/a"
        else
            echo "note: not root; install wrk, nginx and nghttp2-client (h2load) yourself"
        fi
    fi
    bash bench/setup/litellm.sh || echo "note: LiteLLM setup failed; it will be reported as n/a"
    bash bench/libs/setup.sh >/dev/null || echo "note: bench/.venv-libs setup failed; bench/libs/run.py will not run"
}

case "$what" in
    setup) setup ;;
    gateway) "$PY" bench/run.py "$@" ;;
    libs) "$PY" bench/libs/run.py "$@" ;;
    all) setup; "$PY" bench/run.py "$@" && "$PY" bench/libs/run.py ;;
    *) echo "usage: bench/run.sh [all|setup|gateway|libs] [ARGS]" >&2; exit 2 ;;
esac
