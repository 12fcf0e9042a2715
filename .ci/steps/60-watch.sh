#!/usr/bin/env bash
# `tokmon watch` needs Textual (until it is in pyproject) and tmux for its end-to-end tests.
set -euo pipefail
if ! python3 -c "import textual" 2>/dev/null; then
  python3 -m pip install -q "textual>=8.0,<9"
fi
if ! command -v tmux >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null && apt-get install -y -qq tmux </dev/null
  else
    echo "tmux is not installed and apt-get is unavailable: tmux tests will be skipped" >&2
  fi
fi
tmux -V || true
python3 -c "import textual; print('textual', textual.__version__)"
