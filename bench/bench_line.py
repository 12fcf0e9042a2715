"""Speed of `tokmon line` and of the shell prompt hook, measured in one run.

    python bench/bench_line.py [--runs 60] [--no-hooks] [--in-place]

Targets (issues 2 and 12): warm `tokmon line` through the console script median <= 1.3 x
`python -c pass` (the interpreter start is the floor); the fast command (`python -S
.../fast.py line`) <= 1.2 x `python -S -c pass` and p95 <= 40 ms; Claude Code's statusLine
command as `tokmon install-statusline` writes it (`python -S .../fast.py line --claude`,
payload on stdin, figures unchanged since the last call) <= 1.5 x `python -S -c pass`; with no
snapshot <= 60 ms; the shell hook spawns no process per prompt and adds <= 3 ms.  Uses a copy of the shared real corpus (or
TOKMON_TEST_CORPUS) with one assistant line appended now, in temp dirs only.

Both sides of each ratio are what a user's machine runs: by default this checkout installed as
``scripts/install.py`` installs it (a non-editable ``pip install`` into a venv, cached per source
hash under ``$TOKMON_BENCH_DIR/installed``: bench/_installed.py), timed through that venv's
``tokmon`` console script and fast command, and the floors are that venv's ``python -c pass`` /
``python -S -c pass``. ``--in-place`` measures the old way: the interpreter running this script
(with scripts/test.sh's editable install and whatever ``.pth`` files its site-packages holds,
which slow its ``python -c pass`` as much as its ``tokmon``). The first line printed names which.
Every command runs in a temp dir (``python -m tokmon`` puts the current dir first on sys.path).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from line_support import append_assistant, make_env  # noqa: E402

from tokmon.statusline.refresher import lock_busy  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from _installed import Target, add_argument, resolve  # noqa: E402
from bench_engine import load_avg  # noqa: E402

try:
    import resource
except ImportError:  # Windows: wall time only
    resource = None  # type: ignore[assignment]

#: CPU time (user + system, ms) of each timed child, by its position in the run order
CPU: list[float] = []


def _children_cpu() -> float:
    if resource is None:
        return 0.0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    """Wall time of one run in ms; its CPU time goes to CPU."""
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(argv, env=env, input=stdin, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False,
                   **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))  # fmt: skip
    wall = (time.perf_counter() - start) * 1000.0
    CPU.append(_children_cpu() - cpu)
    return wall


CLAUDE_PAYLOAD = (
    b'{"session_id":"5c1d0b1e-0000-4000-8000-000000000001","session_name":"bench",'
    b'"model":{"id":"claude-opus-4-5-20251101","display_name":"Opus 4.5"},'
    b'"workspace":{"current_dir":"/tmp","project_dir":"/tmp"},'
    b'"cost":{"total_cost_usd":1.25},"context_window":{"context_window_size":200000,'
    b'"used_percentage":42},"rate_limits":{"five_hour":{"used_percentage":63,'
    b'"resets_at":4102444800},"seven_day":{"used_percentage":20,"resets_at":4102444800}}}'
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, values: list[float]) -> str:
    return (f"{name:<44} median {statistics.median(values):6.1f} ms   p95 {pct(values, 0.95):6.1f}"
            f" ms   min {min(values):6.1f} ms   (n={len(values)})")  # fmt: skip


def bench_env(target: Target, path: Path, copy_corpus: bool = True) -> dict[str, str]:
    """make_env for ``target`` (installed: no PYTHONPATH, the venv first on PATH), plus
    bytecode caching on as on a user's machine (a warm install has .pyc files;
    PYTHONDONTWRITEBYTECODE would make every run compile tokmon's modules again)."""
    env = target.env(make_env(path, copy_corpus))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def refresh_now(target: Target, env: dict[str, str]) -> None:
    """Build the snapshot synchronously (what the background refresher does), with the
    target's own tokmon."""
    subprocess.run(
        [target.python, "-c", "from tokmon.statusline.refresher import refresh; refresh(wait=True)"],
        env=env, check=True, timeout=120,
    )  # fmt: skip


def fast_command(target: Target, env: dict[str, str]) -> list[str]:
    """The target's ``python -S .../fast.py`` (``tokmon.statusline.main.fast_command`` as
    that tokmon computes it: the installed copy's fast.py, or the checkout's in place)."""
    code = (
        "import json\nfrom tokmon.statusline.main import fast_command as f\nprint(json.dumps(f()))"
    )
    res = subprocess.run([target.python, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    return list(json.loads(res.stdout))


def bench_process(target: Target, runs: int, tmp: Path) -> dict[str, list[float]]:
    env = bench_env(target, tmp / "warm")
    append_assistant(env, input_tokens=500_000, output_tokens=300_000)
    cfg = Path(env["TOKMON_HOME"]) / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[line]\nstale_seconds = 3600\n", encoding="utf-8")  # keep it warm
    refresh_now(target, env)
    base = [target.python, "-c", "pass"]  # the floors: the same interpreter as tokmon's
    base_s = [target.python, "-S", "-c", "pass"]
    script = [*target.script, "line"]
    module = [*target.module(), "line"]
    tmux = [*target.script, "line", "--format", "tmux", "--cwd", str(tmp)]
    claude = [*target.script, "line", "--claude"]
    fast = [*fast_command(target, env), "line"]  # what the tmux plugin and install-statusline run
    claude_fast = [*fast[:-1], "line", "--claude"]  # Claude Code's statusLine command
    out: dict[str, list[float]] = {
        k: [] for k in ("base", "base_s", "script", "module", "tmux", "claude", "fast",
                        "claude_fast", "cpu_base", "cpu_base_s", "cpu_fast", "cpu_claude_fast",
                        "cpu_script")
    }  # fmt: skip
    for argv in (base, base_s, script, module, tmux, fast):  # warm the OS caches
        timed(argv, env)
    timed(claude_fast, env, CLAUDE_PAYLOAD)  # first call records the figures
    for _ in range(runs):  # interleaved, so drift hits every variant alike
        out["base"].append(timed(base, env))
        out["cpu_base"].append(CPU[-1])
        out["base_s"].append(timed(base_s, env))
        out["cpu_base_s"].append(CPU[-1])
        out["fast"].append(timed(fast, env))
        out["cpu_fast"].append(CPU[-1])
        out["claude_fast"].append(timed(claude_fast, env, CLAUDE_PAYLOAD))
        out["cpu_claude_fast"].append(CPU[-1])
        out["script"].append(timed(script, env))
        out["cpu_script"].append(CPU[-1])
        out["module"].append(timed(module, env))
        out["tmux"].append(timed(tmux, env))
        out["claude"].append(timed(claude, env, CLAUDE_PAYLOAD))
    # stale snapshot, nothing changed: revalidated in-process (a few stat calls)
    cfg.write_text("[line]\nstale_seconds = 1\n", encoding="utf-8")
    refresh_now(target, env)
    snap = Path(env["TOKMON_HOME"]) / "cache" / "line" / "snapshot.bin"
    out["revalidate"] = []
    for _ in range(max(10, runs // 3)):
        t = time.time() - 5
        os.utime(snap, (t, t))
        out["revalidate"].append(timed(script, env))
    # no snapshot at all: placeholder + one detached refresher (waited for between runs)
    empty = bench_env(target, tmp / "empty", copy_corpus=False)
    out["nosnap"] = []
    for i in range(max(10, runs // 3)):
        env_i = dict(empty, TOKMON_HOME=str(tmp / f"nosnap-{i}"))
        out["nosnap"].append(timed(script, env_i))
        deadline = time.monotonic() + 20
        target = tmp / f"nosnap-{i}" / "cache" / "line" / "snapshot.bin"
        lock = tmp / f"nosnap-{i}" / "cache" / "line" / "refresh.lock"
        while time.monotonic() < deadline and (not target.exists() or lock_busy(str(lock))):
            time.sleep(0.05)
        time.sleep(0.3)  # let the refresher exit: measure the prompt, not its CPU contention
    return out


HOOK_LOOP = {
    "bash": ("bash", "--norc", "--noprofile", "-c"),
    "zsh": ("zsh", "-f", "-c"),
}


def bench_hooks(target: Target, tmp: Path, iterations: int = 1000) -> dict[str, dict[str, float]]:
    env = bench_env(target, tmp / "hooks")
    append_assistant(env, input_tokens=1000, output_tokens=1000)
    refresh_now(target, env)
    env["TOKMON_REFRESH_SECONDS"] = "1000000"  # measure the per-prompt path, not the trigger
    results: dict[str, dict[str, float]] = {}
    for shell in ("bash", "zsh", "fish"):
        if shutil.which(shell) is None:
            continue
        init = subprocess.run([*target.script, "init", shell], env=env, capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
        init_file = tmp / f"init.{shell}"
        init_file.write_text(init, encoding="utf-8")
        func = {"bash": "_tokmon_prompt", "zsh": "_tokmon_precmd", "fish": "_tokmon_on_prompt"}[
            shell
        ]
        if shell == "fish":
            script = (
                f"source {init_file}; {func}; sleep 3; set -l t0 (date +%s%N); "
                f"for i in (seq {iterations}); {func}; end; set -l t1 (date +%s%N); "
                f"for i in (seq {iterations}); true; end; set -l t2 (date +%s%N); "
                'echo (math "($t1 - $t0) - ($t2 - $t1)") $TOKMON_LINE'
            )
            argv = ["fish", "--no-config", "-c", script]
        else:
            pre = "zmodload zsh/datetime; " if shell == "zsh" else ""
            script = (
                f"{pre}source {init_file}; {func}; sleep 3; t0=$EPOCHREALTIME; "
                f"for ((i=0;i<{iterations};i++)); do {func}; done; t1=$EPOCHREALTIME; "
                f"for ((i=0;i<{iterations};i++)); do :; done; t2=$EPOCHREALTIME; "
                'echo $(( ((t1 - t0) - (t2 - t1)) * 1000000000 )) "$TOKMON_LINE"'
            )
            if shell == "bash":  # bash has no float arithmetic: let python subtract
                script = script.replace(
                    'echo $(( ((t1 - t0) - (t2 - t1)) * 1000000000 )) "$TOKMON_LINE"',
                    'echo "$t0 $t1 $t2" "$TOKMON_LINE"',
                )
            argv = [*HOOK_LOOP[shell], script]
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        first = res.stdout.split()
        if not first:
            print(f"{shell}: hook bench failed: {res.stderr.strip()[:300]}")
            continue
        if shell == "bash":
            t0, t1, t2 = (float(x) for x in first[:3])
            ns = ((t1 - t0) - (t2 - t1)) * 1e9
            shown = " ".join(first[3:])
        else:
            ns = float(first[0])
            shown = " ".join(first[1:])
        spawned = count_spawns(argv[0], init_file, func, shell, env)
        results[shell] = {"us_per_prompt": ns / iterations / 1000.0, "spawns": spawned}
        results[shell]["line_ok"] = float(shown.startswith("5h "))
    return results


def count_spawns(shell_bin: str, init_file: Path, func: str, shell: str, env) -> float:
    """Processes created by 200 prompts minus those of zero prompts (strace), or -1.

    The hook's background refresh (at most every TOKMON_REFRESH_SECONDS, default 3) is set
    an hour apart here: bash's and zsh's SECONDS count whole seconds, so the 2 s pause and
    the loop could cross the 3 s mark, and one designed refresh (2 processes) was counted in
    some runs and not in others (thirteenth session's CI). What is counted is per prompt."""
    if shutil.which("strace") is None:
        return -1.0
    env = {**env, "TOKMON_REFRESH_SECONDS": "3600"}

    def run(n: int) -> int:
        log = init_file.with_suffix(f".strace{n}")
        if shell == "fish":
            loop = f"source {init_file}; {func}; sleep 2; for i in (seq {n}); {func}; end"
            argv = ["fish", "--no-config", "-c", loop]
        else:
            loop = f"source {init_file}; {func}; sleep 2; for ((i=0;i<{n};i++)); do {func}; done"
            argv = [*HOOK_LOOP[shell], loop]
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3", "-o",
                        str(log), *argv], env=env, capture_output=True, timeout=120)  # fmt: skip
        text = log.read_text(encoding="utf-8", errors="replace")
        return sum(1 for ln in text.splitlines()
                   if ("clone" in ln or "fork" in ln) and "CLONE_THREAD" not in ln)  # fmt: skip

    return float(run(200) - run(0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--no-hooks", action="store_true", help="skip the shell prompt hooks")
    add_argument(ap)
    args = ap.parse_args()
    target = resolve(args.in_place)
    tmp = Path(tempfile.mkdtemp(prefix="tokmon-bench-line-"))
    cwd = os.getcwd()
    os.chdir(tmp)  # no command runs in the checkout (`-m tokmon` would import it first)
    try:
        print(f"{target.describe()}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
              f"load {load_avg()}")  # fmt: skip
        p = bench_process(target, args.runs, tmp)
        print(summary("python -c pass (floor)", p["base"]))
        print(summary("python -S -c pass (floor of -S commands)", p["base_s"]))
        print(summary("tokmon line (warm, console script)", p["script"]))
        print(summary("fast command: python -S fast.py line (warm)", p["fast"]))
        print(summary("python -m tokmon line (warm)", p["module"]))
        print(summary("tokmon line --format tmux --cwd (warm)", p["tmux"]))
        print(summary("tokmon line --claude (console script)", p["claude"]))
        print(summary("line --claude (fast command = statusLine)", p["claude_fast"]))
        print(summary("tokmon line (stale, revalidated in-process)", p["revalidate"]))
        print(summary("tokmon line (no snapshot: placeholder+spawn)", p["nosnap"]))
        floor = statistics.median(p["base"])
        print(f"{'tokmon own cost over the floor (medians)':<44} warm "
              f"{statistics.median(p['script']) - floor:+.1f} ms   no snapshot "
              f"{statistics.median(p['nosnap']) - floor:+.1f} ms   floor p95 "
              f"{pct(p['base'], 0.95):.1f} ms")  # fmt: skip
        hooks = {} if args.no_hooks else bench_hooks(target, tmp)
        for shell, r in hooks.items():
            spawns = "n/a (no strace)" if r["spawns"] < 0 else f"{r['spawns']:.0f}"
            print(f"{shell + ' prompt hook':<44} {r['us_per_prompt'] / 1000:6.3f} ms per prompt"
                  f"   processes spawned by 200 prompts: {spawns}"
                  f"   line shown: {'yes' if r['line_ok'] else 'NO'}")  # fmt: skip
        ratio = statistics.median(p["script"]) / statistics.median(p["base"])
        floor_s = statistics.median(p["base_s"])
        fratio = statistics.median(p["fast"]) / floor_s
        cratio = statistics.median(p["claude_fast"]) / floor_s
        print(
            f"{'ratios (medians, this run)':<44} console script / python -c pass {ratio:.2f}"
            f"   fast / python -S {fratio:.2f}   --claude / python -S {cratio:.2f}"
        )
        if resource is not None:  # CPU time: steadier than wall time on a loaded machine
            cpu = {k: statistics.median(p["cpu_" + k]) for k in
                   ("base", "base_s", "fast", "claude_fast", "script")}  # fmt: skip
            print(f"{'same, CPU time (user+sys medians; info)':<44} console script / python -c "
                  f"pass {cpu['script'] / cpu['base']:.2f}   fast / python -S "
                  f"{cpu['fast'] / cpu['base_s']:.2f}   --claude / python -S "
                  f"{cpu['claude_fast'] / cpu['base_s']:.2f}   (python -S -c pass "
                  f"{cpu['base_s']:.1f} ms CPU)")  # fmt: skip
        checks = [
            (f"warm median / python -c pass = {ratio:.2f} <= 1.3 (console script)", ratio <= 1.3),
            (f"warm median / python -S -c pass = {fratio:.2f} <= 1.2 (fast command)",
             fratio <= 1.2),
            (f"line --claude median / python -S -c pass = {cratio:.2f} <= 1.5 (statusLine "
             "command)", cratio <= 1.5),
            (f"warm p95 = {pct(p['fast'], 0.95):.1f} ms <= 40 (fast command, as integrations "
             "run it)", pct(p["fast"], 0.95) <= 40),
            (f"warm p95 = {pct(p['script'], 0.95):.1f} ms (console script; its floor is "
             f"python's site start-up: p95 {pct(p['base'], 0.95):.1f} ms)", True),
            (f"no-snapshot median = {statistics.median(p['nosnap']):.1f} ms <= 60",
             statistics.median(p["nosnap"]) <= 60),
        ]  # fmt: skip
        for shell, r in hooks.items():
            ms = r["us_per_prompt"] / 1000
            checks.append((f"{shell} hook {ms:.3f} ms <= 3", ms <= 3))
            if r["spawns"] >= 0:
                checks.append(
                    (f"{shell} hook spawns {r['spawns']:.0f} processes", r["spawns"] == 0)
                )
        print()
        for text, ok in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        return 0 if all(ok for _, ok in checks) else 1
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
