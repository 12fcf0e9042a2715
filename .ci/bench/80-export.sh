#!/usr/bin/env bash
# Metric recompute and exposition cost on 500k in-memory records (issue 16).
# (In-process: it starts no tokmon process, so the installed copy of 05-install.sh is not used.)
set -euo pipefail
python3 bench/bench_export.py --records 500000
