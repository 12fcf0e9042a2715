#!/usr/bin/env bash
# Install every test dependency (Python, Debian, npm) and run the whole test suite.
# This is the README's second Quickstart command; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q -e '.[test]'
# Each feature's own set-up and non-Python checks (apt packages, ccusage, the VS Code extension).
for step in .ci/steps/*.sh; do
  [ -e "$step" ] || continue
  echo "== ${step}"
  bash "$step"
done
echo "== ruff"
python3 -m ruff check tokmon tests bench scripts
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
