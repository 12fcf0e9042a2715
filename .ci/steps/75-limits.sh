#!/usr/bin/env bash
# Limits and alerts (docs/limits.md): dbus-daemon for the private session bus that
# tests/test_alerts_desktop.py starts (it owns org.freedesktop.Notifications itself with
# jeepney).  apprise and jeepney come from pyproject.  Idempotent, non-interactive.
set -euo pipefail
if ! command -v dbus-daemon >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    flock /tmp/apt.lock sh -c 'apt-get update -qq </dev/null; apt-get install -y -qq dbus-daemon </dev/null >/dev/null || apt-get install -y -qq dbus </dev/null >/dev/null'
  else
    echo "cannot install dbus-daemon (no apt-get): the D-Bus notification test will be skipped" >&2
  fi
fi
command -v dbus-daemon
