#!/usr/bin/env bash
# `tokmon watch` idle CPU over 30 s and append-to-screen latency (issue 6).
set -euo pipefail
python3 bench/bench_watch.py --idle 30
