#!/usr/bin/env bash
# Metric recompute and exposition cost on 500k in-memory records (issue 16).
set -euo pipefail
python3 bench/bench_export.py --records 500000
