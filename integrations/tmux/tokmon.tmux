#!/usr/bin/env bash
# tokmon TPM plugin: replaces #{tokmon} (and #{tokmon_<segment>}) in status-left/status-right
# with a `tokmon line --format tmux` job.  tmux runs #() jobs in the background and shows the
# last output, so the status line never waits; tokmon itself answers from its snapshot.
#
# Options (set before TPM runs, e.g. `set -g @tokmon_warning_percent 70`):
#   @tokmon_command            how to run tokmon (default: `tokmon` found on PATH now)
#   @tokmon_template           text for #{tokmon}, e.g. "{block} {today}" (default: the full line)
#   @tokmon_warning_percent    warning style from this % of the token limit (default: config, 80)
#   @tokmon_critical_percent   critical style from this % (default: config, 95)
#   @tokmon_normal_style / @tokmon_warning_style / @tokmon_critical_style / @tokmon_stale_style
#                              tmux styles, e.g. "fg=yellow" or "fg=red,bold"
#   @tokmon_use_pane_path      on (default): show the session of the active pane's project
#   @tokmon_interval           if set, also sets status-interval (seconds)
set -u

option() {
  local value
  value=$(tmux show-option -gqv "$1")
  printf '%s' "${value:-${2:-}}"
}

squote() { # single-quote for sh, then double every '#' for the tmux format parser
  local q
  q=$(printf '%s' "$1" | sed "s/'/'\\\\''/g; s/#/##/g")
  printf "'%s'" "$q"
}

tokmon_cmd=$(option @tokmon_command)
if [ -z "$tokmon_cmd" ]; then
  if command -v tokmon >/dev/null 2>&1; then
    # `<python> -S .../tokmon/statusline/fast.py` answers ~4x faster than the `tokmon` script
    fast=$("$(command -v tokmon)" line --fast-command 2>/dev/null)
    if [ -n "$fast" ]; then
      tokmon_cmd=${fast//\#/##}
    else
      tokmon_cmd=$(squote "$(command -v tokmon)")
    fi
  elif command -v python3 >/dev/null 2>&1; then
    # no `tokmon` script: ask python3's tokmon for its fast command, from `/` and with the
    # cwd entry dropped from sys.path first (a cloned repository's `tokmon/` or `json.py`
    # must never run; same bootstrap as tokmon/safepython.py)
    boot="import sys;sys.path[:]=[p for p in sys.path if p not in ('','.')];import runpy;m=sys.argv.pop(1);runpy.run_module(m,run_name='__main__',alter_sys=True)"
    fast=$(cd / && python3 -c "$boot" tokmon line --fast-command 2>/dev/null)
    if [ -n "$fast" ]; then
      tokmon_cmd=${fast//\#/##}
    else  # last resort; -P (3.11+) keeps the cwd off sys.path, and the job starts in /
      tokmon_cmd="cd / && python3 -P -m tokmon"
    fi
  else
    tokmon_cmd="cd / && python3 -P -m tokmon"
  fi
fi

args="line --format tmux"
if [ "$(option @tokmon_use_pane_path on)" = on ]; then
  args="$args --cwd #{q:pane_current_path}"
fi
for level in warning critical; do
  pct=$(option "@tokmon_${level}_percent")
  [ -n "$pct" ] && args="$args --$level $(squote "$pct")"
done
for level in normal warning critical stale; do
  style=$(option "@tokmon_${level}_style")
  [ -n "$style" ] && args="$args --style $(squote "$level=$style")"
done
interval=$(option @tokmon_interval)
[ -n "$interval" ] && tmux set-option -g status-interval "$interval"

template=$(option @tokmon_template)
segments="block seven_day today session context block_tokens block_cost block_percent time_left burn five_hour today_cost session_name session_cost context_percent"

interpolate() {
  local text=$1 t seg
  if [ -n "$template" ]; then t=" --template $(squote "$template")"; else t=""; fi
  text=${text//\#\{tokmon\}/#($tokmon_cmd $args$t)}
  for seg in $segments; do
    text=${text//\#\{tokmon_$seg\}/#($tokmon_cmd $args --template $(squote "{$seg}"))}
  done
  printf '%s' "$text"
}

for side in status-left status-right; do
  value=$(tmux show-option -gqv "$side")
  case $value in
    *'#{tokmon'*) tmux set-option -gq "$side" "$(interpolate "$value")" ;;
  esac
done
