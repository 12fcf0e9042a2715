#!/usr/bin/env bash
# `tokmon web` (issue 17): first paint in headless Chromium on the generated 500 MB corpus (same
# dir as 10-engine.sh, reused when present) with a warm ledger, plus append -> DOM latency.
# The server is the installed copy of 05-install.sh (the "tokmon" figure says so).
set -euo pipefail
dir="${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/corpus500"
python3 bench/bench_web.py --mb 500 --keep "$dir" --loads 10 --appends 10
