"""``tokmon line`` end to end: real processes, real snapshot files, the real corpus copy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from line_support import append_assistant, make_env, refresh_now, run_line, template_line, wait_for

from tokmon.fsutil import FileLock
from tokmon.statusline.locate import fast_snapshot_file, lock_file, tokmon_dirs


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory):
    """One corpus copy with a current block (1M tokens appended now) and a built snapshot."""
    env = make_env(tmp_path_factory.mktemp("line-main"))
    append_assistant(env, input_tokens=600_000, output_tokens=400_000)
    refresh_now(env)
    return env


def snapshot_path(env) -> Path:
    return Path(fast_snapshot_file(tokmon_dirs(env)))


def test_no_snapshot_prints_placeholder_and_starts_one_refresh(tmp_path):
    env = make_env(tmp_path)
    res = run_line(["-v"], env)
    assert res.returncode == 0
    assert res.stdout == "tokmon …\n"
    assert "no usable snapshot" in res.stderr and "started a background refresher" in res.stderr
    # the detached refresher builds the snapshot; the next call shows real figures
    wait_for(snapshot_path(env).exists, timeout=60)
    res = run_line([], env)
    assert res.returncode == 0 and res.stdout.startswith("5h idle | today $0.00")


def test_current_block_today_and_project_session(corpus_env):
    _, line = template_line(corpus_env)
    res = run_line(["--cwd", line["cwd"]], corpus_env)
    assert res.returncode == 0, res.stderr
    block, today, session = res.stdout.strip().split(" | ")
    # the appended line alone is the current block: 1,000,000 tokens
    assert block.startswith("5h 1.00M $") and " left " in block
    assert today.startswith("today $") and today != "today $0.00"
    assert session.endswith("$" + session.rsplit("$", 1)[1]) and session.split(" $")[0]
    assert res.stderr == ""


def test_global_json_flag_means_the_json_format(corpus_env):
    import subprocess

    from line_support import tokmon_cmd

    want = json.loads(run_line(["-f", "json"], corpus_env).stdout)["segments"]
    after = run_line(["--json"], corpus_env)
    before = subprocess.run([*tokmon_cmd(), "--json", "line"], env=corpus_env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    for res in (after, before):
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["segments"] == want  # the line's JSON, not the stats summary


def test_json_format_and_explain(corpus_env):
    res = run_line(["-f", "json", "--explain"], corpus_env)
    data = json.loads(res.stdout)
    assert data["segments"][0]["fields"]["block_tokens"] == "1.00M"
    assert data["stale"] is False and data["placeholder"] is False
    assert "from the transcripts" in data["explain"]["block"]
    res = run_line(["--explain", "--timings"], corpus_env)
    out = res.stdout.splitlines()
    assert out[0].startswith("5h 1.00M")
    assert any(line.startswith("snapshot: ") for line in out)
    assert any("token limit:" in line for line in out)
    assert any(line.strip().startswith("read snapshot") and line.endswith("ms") for line in out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "html"], "unknown format 'html'"),
        (["--warning", "lots"], "--warning expects a number"),
        (["--cwd", "/a", "--session", "b"], "cannot be combined"),
        (["--bogus"], "unrecognized argument '--bogus'"),
        (["--template", "{nope}"], "unknown template field 'nope'"),
        (["--style", "loud=red"], "--style expects LEVEL=STYLE"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(corpus_env, args, message):
    res = run_line(args, corpus_env)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and message in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("garbage", [b"", b"\x00\x01garbage", b"\xe3\x00\x00\x00\x00"])
def test_corrupt_snapshot_gives_placeholder_exit_0_and_silence(tmp_path, garbage):
    env = make_env(tmp_path, copy_corpus=False)
    snap = snapshot_path(env)
    snap.parent.mkdir(parents=True)
    snap.write_bytes(garbage)
    for fmt in ("plain", "tmux", "bash", "zsh", "fish", "starship"):
        res = run_line(["-f", fmt, "--no-refresh"], env)
        assert res.returncode == 0 and res.stderr == ""
        assert "tokmon …" in res.stdout and res.stdout.count("\n") == 1
    res = run_line(["--no-refresh", "--verbose"], env)
    assert "no usable snapshot" in res.stderr


def test_unwritable_cache_dir_still_prints_and_exits_0(tmp_path):
    env = make_env(tmp_path, copy_corpus=False)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env["TOKMON_HOME"] = str(blocker / "home")  # mkdir below a file fails, even for root
    for fmt in ("plain", "tmux", "zsh"):
        res = run_line(["-f", fmt], env)
        assert res.returncode == 0 and res.stderr == "" and "tokmon …" in res.stdout
    res = run_line(["--verbose"], env)
    assert res.returncode == 0 and "not refreshing" in res.stderr


def _age_snapshot(env, seconds: float) -> None:
    p = snapshot_path(env)
    t = time.time() - seconds
    os.utime(p, (t, t))


def test_stale_snapshot_revalidated_in_process_when_nothing_changed(corpus_env):
    refresh_now(corpus_env)  # built just now: well inside the 60 s trust window
    _age_snapshot(corpus_env, 30)
    before = snapshot_path(corpus_env).stat().st_mtime
    res = run_line(["-v"], corpus_env)
    assert not res.stdout.rstrip().endswith("*"), res.stdout
    assert "nothing watched changed: revalidated" in res.stderr
    assert snapshot_path(corpus_env).stat().st_mtime > before + 20


def test_append_makes_it_stale_then_one_refresh_shows_new_totals(tmp_path):
    env = make_env(tmp_path)
    append_assistant(env, input_tokens=100_000, output_tokens=100_000)
    refresh_now(env)
    assert run_line([], env).stdout.startswith("5h 200k ")
    append_assistant(env, input_tokens=150_000, output_tokens=150_000)
    _age_snapshot(env, 30)
    res = run_line(["-v"], env)
    assert res.stdout.startswith("5h 200k ") and res.stdout.rstrip().endswith("*")
    assert "started a background refresher" in res.stderr
    wait_for(lambda: run_line([], env).stdout.startswith("5h 500k "), timeout=60)


def test_single_flight_no_refresher_while_one_holds_the_lock(tmp_path):
    env = make_env(tmp_path, copy_corpus=False)
    lock = FileLock(Path(lock_file(tokmon_dirs(env))), timeout=1)
    lock.acquire()
    try:
        res = run_line(["-v"], env)
        assert res.returncode == 0 and "a refresh is already running" in res.stderr
        assert not snapshot_path(env).exists()
    finally:
        lock.release()


def test_sync_output_file_for_shell_hooks(tmp_path):
    env = make_env(tmp_path)
    append_assistant(env, input_tokens=10_000, output_tokens=20_000)
    out = tmp_path / "prompt" / "line.zsh"
    res = run_line(["-f", "zsh", "--output", str(out)], env)
    assert res.returncode == 0 and res.stdout == ""
    assert out.read_text(encoding="utf-8").startswith("5h 30.0k $")
    assert (out.stat().st_mode & 0o777) == 0o600 or os.name == "nt"


@pytest.mark.slow
def test_failed_refresh_is_reported_and_not_retried_at_every_prompt(tmp_path):
    env = make_env(tmp_path, copy_corpus=False)
    cfg = Path(env["TOKMON_HOME"]) / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("token_limit = [not toml\n", encoding="utf-8")
    res = run_line(["-v"], env)
    assert res.returncode == 0 and res.stdout == "tokmon …\n"
    assert "started a background refresher" in res.stderr
    error = Path(tokmon_dirs(env)["cache"]) / "line" / "refresh.error"
    wait_for(error.exists)
    time.sleep(2.1)  # past the spawn interval: only the failure backoff holds it back
    res = run_line(["-v"], env)
    assert res.returncode == 0 and res.stdout == "tokmon …\n"
    assert "the last refresh failed" in res.stderr and "invalid TOML" in res.stderr
    # once the config is fixed (and the backoff is over) the next refresh succeeds
    cfg.write_text("token_limit = 1000000\n", encoding="utf-8")
    old = time.time() - 60
    os.utime(error, (old, old))
    run_line([], env)
    wait_for(snapshot_path(env).exists, timeout=60)
    assert not error.exists()


def test_sync_refresh_failure_keeps_the_last_line_marked_stale(tmp_path):
    env = make_env(tmp_path)
    append_assistant(env, input_tokens=10_000, output_tokens=20_000)
    refresh_now(env)
    cfg = Path(env["TOKMON_HOME"]) / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("line = [broken\n", encoding="utf-8")
    _age_snapshot(env, 120)
    out = tmp_path / "line.bash"
    res = run_line(["-f", "bash", "--output", str(out), "-v"], env)
    assert res.returncode == 0 and "refresh failed" in res.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("5h 30.0k $") and text.rstrip("\n").endswith("*\x01\x1b[0m\x02")


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_everything_tokmon_line_writes_is_private(corpus_env):
    run_line(["-f", "zsh", "--output", str(Path(corpus_env["TOKMON_HOME"]) / "cache" / "line"
                                           / "prompt" / "zsh-1.txt")], corpus_env)  # fmt: skip
    cache = Path(corpus_env["TOKMON_HOME"]) / "cache"
    seen = 0
    for path in [cache, *cache.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        seen += 1
    assert seen >= 5
