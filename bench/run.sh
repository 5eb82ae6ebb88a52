#!/usr/bin/env bash
# make bench: find (or install) wrk, install the `bench` dependency group, run the suite.
# Settings are BENCH_* variables (bench/run.py); BENCH_QUICK=1 is a short run for development.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bench: installing wrk"
        apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    else
        echo "bench: wrk is missing; install it (Debian: apt-get install wrk) and run again" >&2
        exit 1
    fi
fi
UV_SYNC_ARGS="--group bench" scripts/bootstrap.sh
exec .venv/bin/python -m bench.run "$@"
