#!/usr/bin/env bash
# Speed of `tokmon line` and the shell prompt hooks (targets printed as PASS/FAIL).
# The installed copy of 05-install.sh: its console script and fast command, and the floors
# (`python -c pass`, `python -S -c pass`) of the same venv's python, so both sides of each ratio
# are what a user's machine runs (the first line printed says which).
set -uo pipefail
python3 bench/bench_line.py --runs 60
