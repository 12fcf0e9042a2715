#!/usr/bin/env bash
# `tokmon web` (issue 17): headless Chromium + chromedriver for the browser tests (selenium comes
# with the test extras), and the server's Python deps if an older install lacks them.
set -euo pipefail
if ! python3 -c "import starlette, uvicorn, selenium" 2>/dev/null; then
  python3 -m pip install -q "starlette>=0.37" "uvicorn>=0.30" "selenium>=4.20"
fi
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null && apt-get install -y -qq chromium chromium-driver </dev/null
  else
    echo "chromium/chromedriver missing and apt-get unavailable: web browser tests will fail under CI" >&2
  fi
fi
chromium --version 2>/dev/null || true
chromedriver --version 2>/dev/null || true
