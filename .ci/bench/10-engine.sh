#!/usr/bin/env bash
# Engine speed and memory against ccusage 20.0.24 on a generated 500 MB corpus (issue 7).
set -euo pipefail
dir="${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/corpus500"
python3 bench/bench_engine.py --mb 500 --keep "$dir" --runs 3
