"""tokmon on macOS and Windows, tested on Linux (docs/portability.md).

Only Linux runs here, so each fallback is tested by simulating the platform where that is the
only way: a child process whose ``sitecustomize`` removes the POSIX-only calls and modules
(then the real commands run end to end and must give the same numbers), or a platform
switch around one call. Each simulation is checked to be in force, and where a test could
pass without its fix, a control run shows what it catches.
"""

from __future__ import annotations

import io
import json
import ntpath
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import settle_clock

#: what Windows' os module lacks (and a few others tokmon could be tempted by)
REMOVED_OS = (
    "getuid geteuid getgid getegid getgroups setsid getsid killpg fork forkpty fchown chown "
    "lchown lchmod mkfifo mknod statvfs fstatvfs sync sched_getaffinity posix_spawn "
    "posix_spawnp POSIX_SPAWN_OPEN POSIX_SPAWN_CLOSE POSIX_SPAWN_DUP2 register_at_fork "
    "O_NOFOLLOW O_CLOEXEC O_NONBLOCK O_DIRECTORY O_NOCTTY getloadavg uname"
).split()
BLOCKED_MODULES = "fcntl termios tty pty pwd grp resource".split()
REMOVED_SIGNALS = "SIGKILL SIGHUP SIGUSR1 SIGUSR2 SIGCHLD SIGALRM".split()

SITECUSTOMIZE = f"""
import os, posix, signal, sys
for _name in {REMOVED_OS!r}:
    for _mod in (os, posix):
        if hasattr(_mod, _name):
            delattr(_mod, _name)
for _name in {REMOVED_SIGNALS!r}:
    if hasattr(signal, _name):
        delattr(signal, _name)
for _name in {BLOCKED_MODULES!r}:
    sys.modules[_name] = None  # `import fcntl` raises ImportError
"""


def _simulated_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "no-posix-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return {**env, "PYTHONPATH": str(site)}


def _run(
    args: list[str], env: dict[str, str], cwd: Path, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokmon", *args], env=env, cwd=cwd, capture_output=True,
        text=True, encoding="utf-8", timeout=300, **kw,
    )  # fmt: skip


@pytest.mark.slow
def test_reports_without_posix_calls_equal_the_normal_ones(
    real_corpus: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """`daily`, `session` and `blocks --json` on the real corpus, in a process without
    os.getuid, os.O_NOFOLLOW, fcntl & co., equal a normal process's (each from its own cold
    ledger); `tokmon line --sync` refreshes the snapshot there through the lock fallback."""
    base = {**env, "CLAUDE_CONFIG_DIR": str(real_corpus), "TOKMON_NO_PARALLEL": "1"}
    normal = {**base, "TOKMON_HOME": str(tmp_path / "normal")}
    bare = _simulated_env({**base, "TOKMON_HOME": str(tmp_path / "bare")}, tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", "import os, importlib.util\n"
         "try:\n    import fcntl\nexcept ImportError:\n    fcntl = None\n"
         "print(hasattr(os, 'getuid'), hasattr(os, 'O_NOFOLLOW'), fcntl is None)"],
        env=bare, cwd=tmp_path, capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert probe.stdout.split() == ["False", "False", "True"], probe.stderr  # it is in force
    for report in ("daily", "session", "blocks"):
        want = _run([report, "--json"], normal, tmp_path)
        got = _run([report, "--json"], bare, tmp_path)
        assert want.returncode == 0 and got.returncode == 0, (want.stderr, got.stderr)
        assert got.stderr == want.stderr
        a, b = json.loads(want.stdout), json.loads(got.stdout)
        assert b == a
        assert a.get("totals", {}).get("totalTokens", 1) > 0 or report == "blocks"
    line = _run(["line", "--sync", "--format", "json"], bare, tmp_path)
    assert line.returncode == 0, line.stderr
    assert json.loads(line.stdout)["stale"] is False
    cache = tmp_path / "bare" / "cache"
    assert (cache / "line" / "snapshot.bin").is_file()
    assert not list((tmp_path / "bare").rglob("*.held"))  # every marker lock released
    # a prompt with no snapshot starts the detached refresher (no posix_spawn, no setsid:
    # subprocess's new session), which builds it in the background
    fresh = {**bare, "TOKMON_HOME": str(tmp_path / "bare2")}
    first = _run(["line", "--verbose"], fresh, tmp_path)
    assert first.returncode == 0 and "started a background refresher" in first.stderr
    snapshot = tmp_path / "bare2" / "cache" / "line" / "snapshot.bin"
    deadline = time.monotonic() + 120
    while not snapshot.is_file():
        assert time.monotonic() < deadline, (tmp_path / "bare2" / "cache" / "line").glob("*")
        time.sleep(0.1)


# --------------------------------------------------------------------- the lock without fcntl


def _marker_lock(monkeypatch: pytest.MonkeyPatch) -> Any:
    from tokmon import fsutil

    monkeypatch.setattr(fsutil, "fcntl", None)
    return fsutil


def test_lock_without_fcntl_excludes_other_holders(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    fsutil = _marker_lock(monkeypatch)
    path = tmp_path / "x.lock"
    held = fsutil.FileLock(path, timeout=0.2)
    assert held.acquire()
    marker = Path(str(path) + fsutil.HELD_SUFFIX)
    assert marker.read_text(encoding="ascii") == str(os.getpid())
    errors: list[BaseException] = []

    def other_thread() -> None:  # waits as another process would, then gives up
        try:
            fsutil.FileLock(path, timeout=0.3).acquire()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(30)
    assert len(errors) == 1 and isinstance(errors[0], fsutil.LockTimeout)
    held.release()
    assert not marker.exists()
    again = fsutil.FileLock(path, timeout=5)
    assert again.acquire()
    again.release()


def test_lock_without_fcntl_takes_over_a_dead_holders_marker(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    fsutil = _marker_lock(monkeypatch)
    path = tmp_path / "x.lock"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(60)
    marker = Path(str(path) + fsutil.HELD_SUFFIX)
    marker.write_text(str(gone.pid), encoding="ascii")  # a holder killed while holding it
    lock = fsutil.FileLock(path, timeout=5)
    assert lock.acquire()
    assert marker.read_text(encoding="ascii") == str(os.getpid())
    lock.release()
    # a live holder's marker is respected
    marker.write_text(str(os.getppid()), encoding="ascii")
    with pytest.raises(fsutil.LockTimeout):
        fsutil.FileLock(path, timeout=0.2).acquire()


# ------------------------------------------------------------------ spawned scan workers


def test_spawned_scan_workers_equal_a_sequential_scan(real_corpus, monkeypatch):  # type: ignore[no-untyped-def]
    """macOS and Windows spawn the scan workers (fresh interpreters that import tokmon and
    unpickle their tasks): same results as one process."""
    from tokmon.core import scan
    from tokmon.core.discovery import transcript_stats

    monkeypatch.setattr(scan, "START_METHOD", "spawn")
    monkeypatch.setenv("TOKMON_SCAN_POOL", "process")  # (with the native scanner: threads)
    # (the spawn path sets PYTHONSAFEPATH=1 in os.environ for the children: undone at the end)
    monkeypatch.setenv("PYTHONSAFEPATH", "1")
    items = sorted((k, 0, st.st_size) for k, st in transcript_stats(real_corpus / "projects"))
    seq = list(scan.scan_all(items, workers=1))
    par = list(scan.scan_all(items, workers=2, min_bytes=0))
    assert len({r.pid for r in par}) == 2  # the other process did scan
    assert [(r.key, r.end, r.rows, r.titles, r.malformed) for r in par] == [
        (r.key, r.end, r.rows, r.titles, r.malformed) for r in seq
    ]


# ------------------------------------------------- Windows: DirEntry.stat() has no inode


class _WinEntry:
    """An ``os.DirEntry`` as Windows gives it: ``stat()`` has st_ino = st_dev = 0."""

    def __init__(self, entry: os.DirEntry[str]) -> None:
        self._e = entry
        self.name, self.path = entry.name, entry.path

    def is_dir(self, follow_symlinks: bool = True) -> bool:
        return self._e.is_dir(follow_symlinks=follow_symlinks)

    def is_symlink(self) -> bool:
        return self._e.is_symlink()

    def stat(self, follow_symlinks: bool = True) -> os.stat_result:
        st = self._e.stat(follow_symlinks=follow_symlinks)
        hidden = {n: getattr(st, n) for n in ("st_atime", "st_mtime", "st_ctime",
                                              "st_atime_ns", "st_mtime_ns", "st_ctime_ns")}  # fmt: skip
        seq = list(st)
        seq[1] = seq[2] = seq[3] = 0  # st_ino, st_dev, st_nlink
        return os.stat_result(seq, hidden)


class _WinScandir:
    def __init__(self, path: str) -> None:
        self._it = os.scandir(path)

    def __enter__(self) -> _WinScandir:
        return self

    def __exit__(self, *exc: object) -> None:
        self._it.close()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (_WinEntry(e) for e in self._it)


class _WindowsOs:
    """The discovery module's ``os``, with Windows' scandir."""

    scandir = staticmethod(_WinScandir)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _runs(corpus: Path, home: Path, monkeypatch: pytest.MonkeyPatch, entry_ids: bool) -> Any:
    from tokmon.core import discovery
    from tokmon.core.engine import Engine
    from tokmon.paths import get_paths

    monkeypatch.setattr(discovery, "os", _WindowsOs())
    monkeypatch.setattr(discovery, "_ENTRY_IDS", entry_ids)
    monkeypatch.setattr(discovery, "RACY_NS", 0)  # keep listings of the fresh copy (clock settled)
    settle_clock(corpus)
    roots = [corpus / "projects"]
    paths = get_paths({"TOKMON_HOME": str(home)})

    def refresh() -> Any:
        e = Engine(roots=roots, paths=paths)
        try:
            return e.refresh(), sum(r.output_tokens for r in e.records)
        finally:
            e.close()

    first = refresh()
    project = max((corpus / "projects").iterdir(), key=lambda d: len(list(d.glob("*.jsonl"))))
    some = sorted(project.glob("*.jsonl"))[0]
    line = some.read_bytes().splitlines(keepends=True)[0]
    with open(some, "ab") as fh:  # an append: the directory's kept listing answers (os.stat)
        fh.write(line)
    refresh()
    settle_clock(corpus)
    new = project / "0new-session.jsonl"
    new.write_bytes(line)  # a new file: the directory is listed again (DirEntry.stat)
    third = refresh()
    monkeypatch.undo()
    return first, third, new.stat().st_size, len(list(project.glob("*.jsonl")))


def test_windows_direntry_without_inode_does_not_make_every_file_new(
    corpus_copy, tmp_path, monkeypatch
):  # type: ignore[no-untyped-def]
    """On Windows a fresh listing's stat has no inode while os.stat has one: the walk uses
    os.stat there, so a directory listed again (a new transcript in it) reads the new file
    only, not every file beside it again from byte 0."""
    import shutil

    control = tmp_path / "control-claude"
    shutil.copytree(corpus_copy, control)
    (first, _), (third, total), new_size, in_dir = _runs(
        corpus_copy, tmp_path / "h1", monkeypatch, entry_ids=False
    )
    assert first.files_read > in_dir > 1
    assert (third.files_read, third.bytes_read) == (1, new_size)
    # the control (DirEntry's stat used as is, as before the fix) re-reads the directory
    (_, _), (bad, bad_total), _, _ = _runs(control, tmp_path / "h2", monkeypatch, entry_ids=True)
    assert bad.files_read > 1 and bad.bytes_read > new_size
    assert bad_total == total  # (history is kept either way: only the cost differs)


# ------------------------------------------------------------- Windows consoles and pipes


def test_utf8_stdio_on_a_windows_pipe(monkeypatch):  # type: ignore[no-untyped-def]
    from tokmon import oslite

    raw = io.BytesIO()
    pipe = io.TextIOWrapper(raw, encoding="cp1252", write_through=True)  # Windows' pipe stdout
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", pipe)
    monkeypatch.setattr(sys, "stderr", utf8)
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    monkeypatch.setattr(oslite, "WINDOWS_STDIO", False)
    oslite.utf8_stdio()
    assert pipe.encoding == "cp1252"  # POSIX (or any non-Windows run): untouched
    monkeypatch.setattr(oslite, "WINDOWS_STDIO", True)
    monkeypatch.setenv("PYTHONIOENCODING", "cp1252")
    oslite.utf8_stdio()
    assert pipe.encoding == "cp1252"  # the user's explicit choice wins
    monkeypatch.delenv("PYTHONIOENCODING")
    oslite.utf8_stdio()
    pipe.write("│ proj─é … █\n")
    assert raw.getvalue().decode("utf-8") == "│ proj─é … █\n"
    assert utf8.encoding == "utf-8"


WINDOWS_PIPE = """
import io, sys
sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="cp1252", line_buffering=True)
import tokmon.oslite
tokmon.oslite.WINDOWS_STDIO = {flag}
"""


@pytest.mark.slow
@pytest.mark.parametrize("fixed", [True, False])
def test_reports_and_line_through_a_windows_pipe(env, tmp_path, fixed):  # type: ignore[no-untyped-def]
    """The program on a cp1252 pipe (Windows without a console, e.g. `tokmon session --json |
    jq` or Claude Code reading the statusline): a project named in Japanese comes out as
    the same UTF-8 bytes as on Linux, and so does the statusline; without the fix (the
    control) the report dies with UnicodeEncodeError and the statusline shows its
    placeholder."""
    from datetime import datetime, timedelta, timezone

    from tests.conftest import assistant_line

    claude = tmp_path / "claude"
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    transcript = claude / "projects" / "-home-me-----" / "s1.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text(assistant_line(now, msg_id="m1", req_id="r1", session="s1",
                                         cwd="/home/me/プロジェクト") + "\n", encoding="utf-8")  # fmt: skip
    site = tmp_path / "winpipe"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WINDOWS_PIPE.format(flag=fixed), encoding="utf-8")
    e = {**env, "CLAUDE_CONFIG_DIR": str(claude)}
    e.pop("PYTHONIOENCODING", None)
    linux = subprocess.run([sys.executable, "-m", "tokmon", "session", "--json"], env=e,
                           cwd=tmp_path, capture_output=True, timeout=300)  # fmt: skip
    assert linux.returncode == 0 and "プロジェクト".encode() in linux.stdout, linux.stderr
    e["PYTHONPATH"] = str(site)
    report = subprocess.run([sys.executable, "-m", "tokmon", "session", "--json"], env=e,
                            cwd=tmp_path, capture_output=True, timeout=300)  # fmt: skip
    if fixed:
        assert report.returncode == 0, report.stderr
        assert report.stdout == linux.stdout
    else:
        assert report.returncode != 0 and b"UnicodeEncodeError" in report.stderr
    # the statusline's fast command (python -S .../fast.py, its own entry point), from the
    # snapshot a normal refresh built (-S has no site-packages to build one)
    built = subprocess.run([sys.executable, "-m", "tokmon", "line", "--sync"], env=e,
                           cwd=tmp_path, capture_output=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    fast = Path(__file__).resolve().parent.parent / "tokmon" / "statusline" / "fast.py"
    boot = (
        f"import sys; sys.path.insert(0, {str(fast.parents[2])!r})"
        + WINDOWS_PIPE.format(flag=fixed)
        + textwrap.dedent(
            f"""
        import runpy
        sys.argv = [{str(fast)!r}, "line", "--no-refresh", "--template", "{{today}} ·│·"]
        runpy.run_path(sys.argv[0], run_name="__main__")
        """
        )
    )
    line = subprocess.run([sys.executable, "-S", "-c", boot], env=e, cwd=tmp_path,
                          capture_output=True, timeout=300)  # fmt: skip
    assert line.returncode == 0, line.stderr
    if fixed:
        assert line.stdout.decode("utf-8").rstrip("\r\n").endswith(" ·│·")
    else:
        assert "·│·" not in line.stdout.decode("cp1252", "replace")


# --------------------------------------------------------- Windows paths and quoting


def test_home_is_userprofile_first_on_windows(monkeypatch):  # type: ignore[no-untyped-def]
    from tokmon.paths import user_home

    env = {"HOME": "/home/me", "USERPROFILE": r"C:\Users\me"}
    assert user_home(env) == "/home/me"
    assert user_home({"USERPROFILE": r"C:\Users\me"}) == r"C:\Users\me"
    assert user_home({}) is None
    with monkeypatch.context() as m:
        m.setattr(os, "name", "nt")
        got = user_home(env), user_home({"HOME": r"D:\msys\home\me"})
    assert got == (r"C:\Users\me", r"D:\msys\home\me")


def test_cmd_override_keeps_windows_backslashes(monkeypatch):  # type: ignore[no-untyped-def]
    from tokmon.cli.shell import tokmon_command

    cmd = r'"C:\Program Files\tokmon\tokmon.exe" --x'
    with monkeypatch.context() as m:
        m.setattr(os, "name", "nt")
        got = tokmon_command({}, cmd)
    assert got == [r"C:\Program Files\tokmon\tokmon.exe", "--x"]
    assert tokmon_command({}, "/opt/tok mon/tokmon --x") == ["/opt/tok", "mon/tokmon", "--x"]


def test_fast_command_is_quoted_for_the_platform(monkeypatch):  # type: ignore[no-untyped-def]
    from tokmon.statusline.main import _shell_quote

    assert _shell_quote("/usr/bin/python3") == "/usr/bin/python3"
    assert _shell_quote("/a b/python") == "'/a b/python'"
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", "win32")
        got = _shell_quote(r"C:\Program Files\Python312\python.exe")
    assert got == r'"C:\Program Files\Python312\python.exe"'


def test_claude_project_names_from_windows_paths():
    """Claude Code on Windows writes `cwd` as C:\\Users\\me\\proj and names the project dir
    C--Users-me-proj: the project name and ccusage's project key follow, on any OS."""
    from tokmon.cli.reports import project_key
    from tokmon.core.aggregate import project_name

    assert project_name(r"C:\Users\me\proj") == "proj"
    assert project_name("C:\\Users\\me\\proj\\") == "proj"
    assert project_key(r"C:\Users\me\proj") == "C--Users-me-proj"
    assert project_key("/home/me/my.proj") == "-home-me-my-proj"


# ---------------------------------------------------- platformdirs on macOS and Windows


def test_fast_path_dirs_agree_with_platformdirs_on_macos(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from platformdirs.macos import MacOS

    from tokmon.statusline.locate import tokmon_dirs

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("TOKMON_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                "XDG_STATE_HOME"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    mac = MacOS(appname="tokmon", appauthor=False)
    want = {"config": mac.user_config_dir, "data": mac.user_data_dir,
            "cache": mac.user_cache_dir, "state": mac.user_state_dir}  # fmt: skip
    with monkeypatch.context() as m:
        m.setattr(sys, "platform", "darwin")
        got = tokmon_dirs(dict(os.environ))
    assert got == want
    assert got["cache"] == str(tmp_path / "home" / "Library" / "Caches" / "tokmon")


def test_fast_path_dirs_agree_with_platformdirs_on_windows(monkeypatch):  # type: ignore[no-untyped-def]
    from platformdirs.windows import Windows

    from tokmon.statusline.locate import tokmon_dirs

    local = r"C:\Users\me\AppData\Local"
    monkeypatch.setenv("LOCALAPPDATA", local)
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", local)  # (no Windows API here)
    with monkeypatch.context() as m:
        m.setattr(os, "path", ntpath)
        win = Windows(appname="tokmon", appauthor=False)
        want = {"config": win.user_config_dir, "data": win.user_data_dir,
                "cache": win.user_cache_dir, "state": win.user_state_dir}  # fmt: skip
        m.setattr(sys, "platform", "win32")
        got = tokmon_dirs({"LOCALAPPDATA": local})
    assert got == want
    assert got["cache"] == local + r"\tokmon\Cache"


# ------------------------------------------------ files saved by Windows editors (BOM)

BOM = "\ufeff"


def test_config_files_with_a_byte_order_mark(tmp_path, cli):  # type: ignore[no-untyped-def]
    """Notepad (before 2019) and PowerShell 5's `Out-File -Encoding utf8` start UTF-8 files
    with a byte-order mark, which TOML and JSON parsers refuse: the config, its budgets and
    the price override are read as without it."""
    from tokmon.budgets import read_sections
    from tokmon.config import read_raw
    from tokmon.core.pricing import PriceTable

    cfg = tmp_path / "config.toml"
    body = 'timezone = "Asia/Tokyo"\n\n[[budgets]]\nname = "day"\nperiod = "day"\nusd = 5\n'
    cfg.write_text(body, encoding="utf-8")
    plain = read_raw(cfg), read_sections(cfg)
    cfg.write_text(BOM + body, encoding="utf-8")
    assert cfg.read_bytes().startswith(b"\xef\xbb\xbf")
    assert (read_raw(cfg), read_sections(cfg)) == plain
    assert plain[0]["timezone"] == "Asia/Tokyo" and plain[1]["budgets"][0]["usd"] == 5

    prices = tmp_path / "prices.json"
    prices.write_text(BOM + '{"my-model": {"input": 7, "output": 9}}', encoding="utf-8")
    price = PriceTable.load(prices).lookup("my-model")
    assert price is not None and price.output / price.input == pytest.approx(9 / 7)
    cli_out = cli("--config", str(cfg), "config", "show")
    assert cli_out.code == 0 and "Asia/Tokyo" in cli_out.out, cli_out.err


# ------------------------------------------------------ the system zone without a name

ZONE_CHECK = """
import json, os, sys, time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
os.environ["TZ"] = sys.argv[1]
time.tzset()
from tokmon.fmt import system_local
ours, real = system_local(), ZoneInfo(sys.argv[1])
fixed = datetime.now().astimezone().tzinfo  # what tokmon used where no name is found
start = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp())
bad = fixed_bad = 0
for ts in range(start, start + 2 * 366 * 86400, 1800):
    a, b = datetime.fromtimestamp(ts, ours), datetime.fromtimestamp(ts, real)
    same = (a.replace(tzinfo=None), a.fold, a.utcoffset()) == (b.replace(tzinfo=None), b.fold, b.utcoffset())
    bad += not same
    fixed_bad += datetime.fromtimestamp(ts, fixed).date() != b.date()
    if ts % 86400 == 0:  # each local midnight, the other way (utcoffset of a wall time)
        d = b.date()
        bad += datetime(d.year, d.month, d.day, tzinfo=ours).timestamp() != datetime(
            d.year, d.month, d.day, tzinfo=real).timestamp()
print(json.dumps([bad, fixed_bad, str(ours) == str(system_local())]))
"""


@pytest.mark.parametrize(
    ("zone", "has_dst"),
    [("Europe/Paris", True), ("America/New_York", True), ("Australia/Sydney", True),
     ("Asia/Kolkata", False)],
)  # fmt: skip
def test_system_zone_without_a_name_follows_dst(zone, has_dst, tmp_path):  # type: ignore[no-untyped-def]
    """Windows has no /etc/localtime: the system zone is the C library's rules (DST
    included), which give the same local times as the IANA zone over two years of
    half-hours; the fixed offset used before puts hours of the other season on the wrong
    day (the control)."""
    if not hasattr(__import__("time"), "tzset"):
        pytest.skip("time.tzset is POSIX-only")
    out = subprocess.run(
        [sys.executable, "-c", ZONE_CHECK, zone], cwd=tmp_path, capture_output=True,
        text=True, encoding="utf-8", timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    bad, fixed_bad, stable = json.loads(out.stdout)
    assert bad == 0 and stable
    assert (fixed_bad > 0) == has_dst


# ------------------------------------------- Claude Code's statusLine payload on Windows


@pytest.mark.parametrize("writer", ["whole", "in-two-parts-left-open", "silent"])
def test_statusline_payload_through_the_windows_reader(monkeypatch, writer):  # type: ignore[no-untyped-def]
    """Windows pipes cannot be select()ed: the payload is read by a thread, bounded in time;
    the same pipe cases as on POSIX."""
    from tokmon import oslite
    from tokmon.statusline import claude

    monkeypatch.setattr(oslite, "name", "nt")
    payload = json.dumps({"session_id": "s1", "model": {"id": "claude-opus-4-5"}}).encode()
    r, w = os.pipe()
    reader = os.fdopen(r, "rb")
    try:
        if writer == "whole":
            os.write(w, payload)
            os.close(w)
            w = -1
        elif writer == "in-two-parts-left-open":
            os.write(w, payload[:10])
            threading.Timer(0.2, os.write, (w, payload[10:])).start()
        got, note = claude.read_payload(reader, timeout=20 if writer != "silent" else 0.3)
        if writer == "silent":
            assert got is None and "empty" in note
        else:
            assert got == json.loads(payload) and note == "statusLine payload read"
    finally:
        if w != -1:
            os.close(w)
        reader.close()


def test_vscode_workspace_uri_on_windows(monkeypatch):  # type: ignore[no-untyped-def]
    """VS Code names a Windows folder `file:///c%3A/Users/me/proj`; Claude Code's cwd is
    `C:\\Users\\me\\proj`: the server's workspace filter matches them (drive case too)."""
    from tokmon.service import path_from_folder, within

    with monkeypatch.context() as m:
        m.setattr(os, "name", "nt")
        m.setattr(os, "path", ntpath)
        folder = path_from_folder("file:///c%3A/Users/me/my%20proj")
        inside = within(r"C:\Users\me\my proj\sub", folder), within(r"C:\Users\me\other", folder)
        unc = path_from_folder("file://server/share/proj")
    assert folder == r"c:\Users\me\my proj"
    assert inside == (True, False)
    assert unc == r"\\server\share\proj"


def test_statusline_matches_a_windows_cwd_whatever_its_case(monkeypatch):  # type: ignore[no-untyped-def]
    """Windows paths are case-insensitive: a shell in c:\\users\\me\\proj\\src shows the
    session Claude Code recorded for C:\\Users\\me\\proj (POSIX: the case counts)."""
    from tokmon.statusline import formats

    now = 1_800_000_000.0
    row = {"sessionId": "s1", "projectPath": "C:\\Users\\me\\proj", "lastActivity": now - 60}
    snap = {"sessions": [row]}
    cwd = "c:\\users\\me\\proj\\src"
    monkeypatch.setattr(formats, "_FOLD_CASE", False)
    assert formats.match_session(snap, now, cwd, None) is None
    assert formats.match_session(snap, now, "C:\\Users\\me\\proj\\src", None) is row
    monkeypatch.setattr(formats, "_FOLD_CASE", True)
    assert formats.match_session(snap, now, cwd, None) is row
    assert formats.match_session(snap, now, "c:\\users\\me\\project2", None) is None


# ------------------------------------------- Windows file ids beyond SQLite's INTEGER


def _huge_ids(path: Any) -> os.stat_result:
    """os.stat as Windows may give it: a 128-bit ReFS file id, a 64-bit volume serial."""
    st = os.stat(path)
    seq = list(st)
    seq[1], seq[2] = st.st_ino + (7 << 100), st.st_dev + (1 << 63)
    hidden = {n: getattr(st, n) for n in ("st_atime", "st_mtime", "st_ctime",
                                          "st_atime_ns", "st_mtime_ns", "st_ctime_ns")}  # fmt: skip
    return os.stat_result(seq, hidden)


@pytest.mark.parametrize("folded", [True, False])
def test_windows_file_ids_beyond_63_bits(corpus_copy, tmp_path, monkeypatch, folded):  # type: ignore[no-untyped-def]
    """File ids above 2**63 are folded into SQLite's range: the ledger keeps every file
    state, the totals are the corpus's, and a warm run reads nothing; unfolded (the control)
    the first refresh fails (the ledger's columns hold 64 bits)."""
    from tokmon.core import discovery
    from tokmon.core.engine import Engine, check, ingest
    from tokmon.paths import get_paths

    stat = (lambda p: discovery.fold_ids(_huge_ids(p))) if folded else _huge_ids
    for mod in (discovery, check, ingest):
        monkeypatch.setattr(mod, "file_stat", stat)
    monkeypatch.setattr(discovery, "_ENTRY_IDS", False)  # (as on Windows)
    monkeypatch.setattr(discovery, "RACY_NS", 0)
    settle_clock(corpus_copy)
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "home")})
    roots = [corpus_copy / "projects"]
    reference = Engine(roots=roots, paths=get_paths({"TOKMON_HOME": str(tmp_path / "ref")}))
    with monkeypatch.context() as m:  # the reference: plain ids
        for mod in (discovery, check, ingest):
            m.setattr(mod, "file_stat", os.stat)
        reference.refresh()
    want = sorted((r.key, r.output_tokens) for r in reference.records)
    reference.close()

    def run() -> Any:
        e = Engine(roots=roots, paths=paths)
        try:
            return (
                e.refresh(),
                sorted((r.key, r.output_tokens) for r in e.records),
                len(e.ledger.files),
            )
        finally:
            e.close()

    if not folded:
        with pytest.raises(OverflowError):  # SQLite's INTEGER columns and int64 arrays
            run()
        return
    first, got, n_files = run()
    assert got == want and n_files == first.files_read > 10
    for _ in range(2):  # warm: the kept listings, then the flat walk
        warm, got, n_files = run()
        assert (warm.files_read, got, n_files) == (0, want, first.files_read)


def test_transcripts_with_crlf_line_ends_count_the_same(real_corpus, corpus_copy, tmp_path):  # type: ignore[no-untyped-def]
    """Claude Code writes LF; a transcript copied through a CRLF conversion (git autocrlf, a
    Windows editor) counts the same: every record, every token."""
    from tokmon.core.engine import Engine
    from tokmon.paths import get_paths

    n = 0
    for p in (corpus_copy / "projects").rglob("*.jsonl"):
        data = p.read_bytes()
        p.write_bytes(data.replace(b"\n", b"\r\n"))
        n += data.count(b"\n")
    assert n > 1000

    def records(root: Path, home: str) -> list[Any]:
        e = Engine(
            roots=[root / "projects"], paths=get_paths({"TOKMON_HOME": str(tmp_path / home)})
        )
        try:
            e.refresh()
            return sorted(
                (r.key, r.session_id, r.ts, r.input_tokens, r.output_tokens,
                 r.cache_creation_tokens, r.cache_read_tokens) for r in e.records
            )  # fmt: skip
        finally:
            e.close()

    lf = records(real_corpus, "lf")
    assert len(lf) > 100 and records(corpus_copy, "crlf") == lf
