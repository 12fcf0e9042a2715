"""Shell prompt hooks printed by ``tokmon init bash|zsh|fish``.

The hook runs on every prompt with shell builtins only: it reads the
pre-rendered line from a per-shell file (``read``, no process) and at most
every ``TOKMON_REFRESH_SECONDS`` (default 3) seconds, or when the directory
changed, starts ``tokmon line --output FILE`` in the background, which
refreshes the snapshot when stale and rewrites the file: the next prompt
shows the result.

``TOKMON_PROMPT`` chooses where the segment goes: ``left`` (default, before
the prompt), ``right`` (zsh RPROMPT / fish right prompt) or ``none`` (only
set ``$TOKMON_LINE`` and place it yourself).
"""

from __future__ import annotations

import os
import shlex

SHELLS = ("bash", "zsh", "fish")

_BASH = r"""# tokmon prompt segment: eval "$(tokmon init bash)" in ~/.bashrc
_tokmon_cmd=(__CMD__)
_tokmon_file=__FILE__
_tokmon_last=-100000
_tokmon_last_pwd=
TOKMON_LINE=
_tokmon_prompt() {
  local rc=$?
  if [[ -r $_tokmon_file ]]; then
    IFS= read -r TOKMON_LINE < "$_tokmon_file" || :
  fi
  if (( SECONDS - _tokmon_last >= ${TOKMON_REFRESH_SECONDS:-3} )) || [[ $PWD != "$_tokmon_last_pwd" ]]; then
    _tokmon_last=$SECONDS
    _tokmon_last_pwd=$PWD
    ( "${_tokmon_cmd[@]}" line --format bash --cwd "$PWD" --output "$_tokmon_file" </dev/null >/dev/null 2>&1 & )
  fi
  return $rc
}
if [[ ${PROMPT_COMMAND[*]} != *_tokmon_prompt* ]]; then
  if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) == "declare -a"* ]]; then
    PROMPT_COMMAND=(_tokmon_prompt "${PROMPT_COMMAND[@]}")
  else
    PROMPT_COMMAND="_tokmon_prompt${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
  fi
fi
if [[ ${TOKMON_PROMPT:-left} == left && $PS1 != *'$TOKMON_LINE'* ]]; then
  PS1='${TOKMON_LINE:+$TOKMON_LINE }'"$PS1"
fi
"""

_ZSH = r"""# tokmon prompt segment: eval "$(tokmon init zsh)" in ~/.zshrc
typeset -ga _tokmon_cmd
_tokmon_cmd=(__CMD__)
typeset -g _tokmon_file=__FILE__
typeset -gi _tokmon_last=-100000
typeset -g _tokmon_last_pwd=
typeset -g TOKMON_LINE=
_tokmon_precmd() {
  if [[ -r $_tokmon_file ]]; then
    IFS= read -r TOKMON_LINE < "$_tokmon_file" || :
  fi
  if (( SECONDS - _tokmon_last >= ${TOKMON_REFRESH_SECONDS:-3} )) || [[ $PWD != "$_tokmon_last_pwd" ]]; then
    _tokmon_last=$SECONDS
    _tokmon_last_pwd=$PWD
    "${_tokmon_cmd[@]}" line --format zsh --cwd "$PWD" --output "$_tokmon_file" </dev/null >/dev/null 2>&1 &!
  fi
}
autoload -Uz add-zsh-hook
add-zsh-hook precmd _tokmon_precmd
setopt prompt_subst
case ${TOKMON_PROMPT:-left} in
  left) [[ $PROMPT == *'$TOKMON_LINE'* ]] || PROMPT='${TOKMON_LINE:+$TOKMON_LINE }'"$PROMPT" ;;
  right) [[ $RPROMPT == *'$TOKMON_LINE'* ]] || RPROMPT="$RPROMPT"'${TOKMON_LINE:+ $TOKMON_LINE}' ;;
esac
"""

_FISH = r"""# tokmon prompt segment: tokmon init fish | source   (in ~/.config/fish/config.fish)
set -g _tokmon_cmd __CMD__
set -g _tokmon_file __FILE__
set -g _tokmon_stamp "$_tokmon_file.stamp"
set -g _tokmon_last_pwd ''
set -g TOKMON_LINE ''
function _tokmon_on_prompt --on-event fish_prompt
    if test -r $_tokmon_file
        read -g TOKMON_LINE < $_tokmon_file; or true
    end
    set -l every 3
    set -q TOKMON_REFRESH_SECONDS; and set every $TOKMON_REFRESH_SECONDS
    set -l age (path mtime --relative $_tokmon_stamp 2>/dev/null; or echo 100000)
    if test "$age" -ge "$every"; or test "$PWD" != "$_tokmon_last_pwd"
        set -g _tokmon_last_pwd $PWD
        echo -n > $_tokmon_stamp
        command $_tokmon_cmd line --format fish --cwd $PWD --output $_tokmon_file </dev/null >/dev/null 2>&1 &
        disown $last_pid 2>/dev/null
    end
end
function _tokmon_status
    return $argv[1]
end
set -l _tokmon_where left
set -q TOKMON_PROMPT; and set _tokmon_where $TOKMON_PROMPT
if test $_tokmon_where = left; and not functions -q _tokmon_orig_fish_prompt
    functions -q fish_prompt; or function fish_prompt; echo -n '> '; end
    functions -c fish_prompt _tokmon_orig_fish_prompt
    function fish_prompt
        set -l last_status $status
        test -n "$TOKMON_LINE"; and echo -n "$TOKMON_LINE "
        _tokmon_status $last_status
        _tokmon_orig_fish_prompt
    end
else if test $_tokmon_where = right; and not functions -q _tokmon_orig_fish_right_prompt
    functions -q fish_right_prompt; or function fish_right_prompt; end
    functions -c fish_right_prompt _tokmon_orig_fish_right_prompt
    function fish_right_prompt
        set -l last_status $status
        _tokmon_status $last_status
        _tokmon_orig_fish_right_prompt
        test -n "$TOKMON_LINE"; and echo -n " $TOKMON_LINE"
    end
end
"""


def _quote(word: str, shell: str) -> str:
    if shell == "fish":  # fish: single quotes, with \\ and \' escapes
        return "'" + word.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return shlex.quote(word)


def init_script(shell: str, command: list[str], prompt_dir: str) -> str:
    """The hook for ``shell`` running ``command`` (argv of tokmon) with files in ``prompt_dir``."""
    templates = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}
    cmd = " ".join(_quote(w, shell) for w in command)
    pid = {"bash": "$$", "zsh": "$$", "fish": "$fish_pid"}[shell]
    file_expr = _quote(os.path.join(prompt_dir, f"{shell}-"), shell) + pid + ".txt"
    return templates[shell].replace("__CMD__", cmd).replace("__FILE__", file_expr)
