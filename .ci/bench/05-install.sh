#!/usr/bin/env bash
# The benches measure tokmon as a user runs it: this checkout installed the way the README's
# Quickstart installs it (scripts/install.py: a regular, non-editable `pip install` into a private
# venv), not the editable install of scripts/test.sh on CI's own interpreter (whose `site` runs
# the editable finder and any other .pth files: ~28 ms and more RSS per process on the sandbox).
# The venv lives in $TOKMON_BENCH_DIR/installed/<hash of tokmon/**, pyproject.toml, setup.py,
# MANIFEST.in, scripts/install.py and the interpreter>: made here once per source hash (the C
# extensions compile, pip fetches the dependencies: ~15-60 s), reused by every bench after this
# one (bench/_installed.py). If the install fails, the benches measure in place (`--in-place`,
# the old way) and say so; they do not retry for half an hour.
set -euo pipefail
python3 bench/_installed.py
