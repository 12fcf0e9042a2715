#!/usr/bin/env bash
# Install every test dependency (Python, Debian, npm) and run the whole test suite.
# This is the README's second Quickstart command; .ci/run calls it too.
# Arguments go to pytest: `bash scripts/test.sh -m "not slow"` runs only the fast lane (after
# the installs and lint); `python3 -m pytest -m "not slow"` alone is the under-a-minute loop.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# A distribution's own python3 is "externally managed" (PEP 668, e.g. Debian 12) and refuses
# pip installs: then everything below runs in a venv in .venv.
if python3 -c 'import os, sys, sysconfig; sys.exit(sys.prefix != sys.base_prefix or not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
  [ -x .venv/bin/python3 ] || python3 -m venv .venv
  export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
fi
# The distribution was renamed tokmon-cli: drop an old editable `tokmon` install of this
# project (this clone or another one, gone or renamed since); any other `tokmon` is left alone.
# (`pip show` exits 1 when no `tokmon` is installed: not an error here, whatever pipefail says)
old_loc=$({ python3 -m pip show tokmon 2>/dev/null || true; } | sed -n 's/^Editable project location: //p')
if [ -n "$old_loc" ] && { [ "$old_loc" = "$PWD" ] || [ ! -e "$old_loc/pyproject.toml" ] ||
    grep -qE '^name = "tokmon-cli"' "$old_loc/pyproject.toml"; }; then
  echo "== removing the old editable 'tokmon' install of $old_loc (now tokmon-cli)"
  python3 -m pip uninstall -q -y tokmon
fi
python3 -m pip install -q -e '.[test]'
# Each feature's own set-up and non-Python checks (apt packages, ccusage, the VS Code extension).
for step in .ci/steps/*.sh; do
  [ -e "$step" ] || continue
  echo "== ${step}"
  bash "$step"
done
echo "== ruff"
python3 -m ruff check tokmon tests bench scripts
python3 -m ruff format --check tokmon tests bench scripts
echo "== mypy"
python3 -m mypy tokmon
# the Windows and macOS branches too (docs/portability.md)
python3 -m mypy --platform win32 tokmon
python3 -m mypy --platform darwin tokmon
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
