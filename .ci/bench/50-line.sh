#!/usr/bin/env bash
# Speed of `tokmon line` and the shell prompt hooks (targets printed as PASS/FAIL).
set -uo pipefail
python3 bench/bench_line.py --runs 60
