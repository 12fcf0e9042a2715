#!/usr/bin/env python3
"""The session reports of this checkout, byte for byte, against another revision's, through
a series of changes, at a pinned clock.

    python bench/compare_session_bytes.py --corpus DIR [--base REV] [--work DIR]

``DIR`` (a Claude config dir, or its ``projects``) is never written: its files are hard-linked
into a scratch tree under ``--work`` and a file is copied before anything is appended to it
(a deleted transcript is only its link there). Three homes run side by side: ``--base``
(default ``HEAD~1``, extracted with ``git archive``), this checkout keeping its answers
("now": after a change, ``session --json`` is spliced from its kept answer) and this checkout
with its kept answers removed before each run ("fresh"). After each change (a line appended
to a session, a new session, a transcript deleted, a name and a description, a session whose
first time moves, a title line, the clock 6 hours on, a record that moves to another session,
the ledger rebuilt), ``session --json``, ``--all``, the table (to a pipe, and in terminals
of 160, 80 and 60 columns: an ``@COLUMNS`` first argument), ``--breakdown``, ``--compact``,
``--all``, ``--since/--until`` and ``--id`` must be the same bytes in all three; which path
"now" took for ``session --json`` (kept, splice, build) and for the table in a pipe and at
80 columns (kept, table-splice, table-build) is printed. Exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# a CLI run at the clock argv[1], the kept answer's path reported on stderr (SD_TRACE)
RUN = """import io, os, sys, time
T = float(sys.argv[1])
time.time = lambda: T
argv = sys.argv[2:]
if argv[0].startswith("@"):  # a terminal of that many columns
    os.environ["COLUMNS"] = argv.pop(0)[1:]
    class Tty(io.TextIOWrapper):
        def isatty(self):
            return True
    sys.stdout = Tty(sys.stdout.detach(), encoding="utf-8")
import tokmon.cli.reports as R
if hasattr(R, "SessionCache"):  # every command's kept answer stays (only four would)
    R.SessionCache.KEEP_SESSION = 64
if os.environ.get("SD_TRACE"):
    for name in ("build", "splice"):
        def wrap(*a, _f=getattr(R.SessionParts, name), _n=name, **k):
            sys.stderr.write("PATH " + _n + "\\n")
            return _f(*a, **k)
        setattr(R.SessionParts, name, wrap)
    if hasattr(R, "_table_spliced"):
        import tokmon.cli.tables as Tb
        def table(*a, _f=R._table_spliced, **k):
            got = _f(*a, **k)
            if got is not None:
                sys.stderr.write("PATH table-splice\\n")
            return got
        def whole(*a, _f=Tb.session_table, **k):
            sys.stderr.write("PATH table-build\\n")
            return _f(*a, **k)
        R._table_spliced, Tb.session_table = table, whole
from tokmon.__main__ import main
raise SystemExit(main(argv))
"""
COMMANDS = [
    ("session", "--json"),
    ("session", "--json", "--all"),
    ("session",),
    ("session", "--breakdown"),
    ("session", "--compact"),
    ("session", "--all"),
    ("session", "--since", "20250101", "--until", "20261231"),
    ("session", "--json", "--since", "20250101", "--until", "20261231"),
    ("@160", "session"),
    ("@80", "session"),
    ("@80", "session", "--breakdown"),
    ("@60", "session"),
]


def _link(src: str, dst: str) -> None:
    """A hard link (a copy across file systems)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class Compare:
    def __init__(self, corpus: Path, base: Path, work: Path) -> None:
        self.base = base
        self.work = work
        self.claude = work / "claude"
        src = corpus / "projects" if (corpus / "projects").is_dir() else corpus
        shutil.copytree(src, self.claude / "projects", copy_function=_link)
        self.files = sorted(self.claude.rglob("*.jsonl"), key=lambda p: p.stat().st_size)
        self.target = self.files[-1]
        self.homes = {v: work / f"home-{v}" for v in ("base", "now", "fresh")}
        self.clock = time.time() + 5
        self.bad = 0
        self.template = self._template()

    def _template(self) -> dict[str, Any]:
        for raw in self.target.read_bytes().splitlines():
            if b'"usage"' in raw and b'"assistant"' in raw:
                return dict(json.loads(raw))
        raise SystemExit(f"no assistant line in {self.target}")

    def env(self, variant: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            NO_COLOR="1",  # the "@columns" runs write to a terminal
            CLAUDE_CONFIG_DIR=str(self.claude),
            TOKMON_HOME=str(self.homes[variant]),
            HOME=str(self.work),
            TZ="UTC",
            COLUMNS="200",
            PYTHONPATH=str(self.base if variant == "base" else REPO),
        )
        if variant == "now":
            env["SD_TRACE"] = "1"
        return env

    def run(self, variant: str, *argv: str) -> tuple[bytes, list[str]]:
        if variant == "fresh":
            shutil.rmtree(self.homes[variant] / "cache" / "reports", ignore_errors=True)
        r = subprocess.run(
            [sys.executable, "-c", RUN, repr(self.clock), *argv],
            env=self.env(variant),
            cwd=self.work,
            capture_output=True,
            timeout=900,
        )
        if r.returncode != 0:
            raise SystemExit(f"{variant} {argv}: exit {r.returncode}: {r.stderr.decode()[-2000:]}")
        paths = [x[5:] for x in r.stderr.decode().splitlines() if x.startswith("PATH ")]
        return r.stdout, paths

    def line(self, sid: str, ts: float, out: int = 7, mid: str = "", rid: str = "") -> bytes:
        d = json.loads(json.dumps(self.template))
        d["sessionId"] = sid
        d["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".000Z"
        d["message"]["id"] = mid or "msg_cmp" + uuid.uuid4().hex[:16]
        d["requestId"] = rid or "req_cmp" + uuid.uuid4().hex[:16]
        d["message"]["usage"]["output_tokens"] = out
        d["uuid"] = str(uuid.uuid4())
        return json.dumps(d).encode() + b"\n"

    @staticmethod
    def append(path: Path, data: bytes) -> None:
        if path.stat().st_nlink > 1:  # a link into the corpus: a copy of our own first
            body = path.read_bytes()
            path.unlink()
            path.write_bytes(body)
        with open(path, "ab") as fh:
            fh.write(data)

    @staticmethod
    def sid_of(path: Path) -> str:
        for raw in path.read_bytes().splitlines():
            if b'"sessionId"' in raw:
                return str(json.loads(raw)["sessionId"])
        return path.stem

    def check(self, step: str) -> None:
        for argv in [*COMMANDS, ("session", "--id", self.sid_of(self.target), "--json")]:
            outs = {v: self.run(v, *argv) for v in self.homes}
            same = outs["base"][0] == outs["now"][0] == outs["fresh"][0]
            self.bad += not same
            how = ""
            if argv in (("session", "--json"), ("session",), ("@80", "session")):
                how = ",".join(outs["now"][1]) or "kept"  # the path "now" took
            print(f"{step:24s} {' '.join(argv)[:50]:50s} {'same' if same else 'DIFFER'} {how}")
            if not same:
                for v, (out, _) in outs.items():
                    (self.work / f"{step}-{v}.out".replace(" ", "_")).write_bytes(out)
        self.clock += 30

    def series(self) -> None:
        self.check("cold")
        self.check("again")
        t, files = self.target, self.files
        self.append(t, self.line(self.sid_of(t), self.clock - 10))
        self.check("append")
        new = t.parent / f"{uuid.uuid4()}.jsonl"
        new.write_bytes(self.line(new.stem, self.clock - 20))
        self.check("new session")
        files[len(files) // 2].unlink()
        self.check("transcript deleted")
        sessions = json.loads(self.run("now", "session", "--json")[0])["sessions"]
        other = sessions[min(3, len(sessions) - 1)]["sessionId"]
        for argv in (("name", other, "Renamed"), ("describe", other, "described")):
            for v in self.homes:
                self.run(v, "session", *argv)
            self.check(f"metadata {argv[0]}")
        self.append(files[2], self.line(self.sid_of(files[2]), 1.5e9 + 3600))
        self.check("first moves earlier")
        title = {"type": "custom-title", "customTitle": "A title", "sessionId": "x"}
        title["sessionId"] = self.sid_of(files[3])
        self.append(files[3], json.dumps(title).encode() + b"\n")
        self.check("title line")
        self.clock += 6 * 3600
        self.check("clock +6h")
        for raw in files[4].read_bytes().splitlines():
            if b'"usage"' in raw and b'"assistant"' in raw:
                rec = json.loads(raw)
                out = rec["message"]["usage"]["output_tokens"] + 1000
                mid, rid = rec["message"].get("id", ""), rec.get("requestId", "")
                sid = self.sid_of(files[5])
                self.append(files[5], self.line(sid, self.clock - 100, out, mid, rid))
                self.check("record moves session")
                break
        self.append(t, self.line(self.sid_of(t), self.clock - 5))
        self.check("append again")
        for home in self.homes.values():
            for p in (home / "data").glob("ledger-*.sqlite3*"):
                p.unlink()
        self.check("ledger rebuilt")
        self.append(t, self.line(self.sid_of(t), self.clock - 5))
        self.check("append after rebuild")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a Claude config dir (read only)")
    ap.add_argument("--base", default="HEAD~1", help="git revision to compare with (HEAD~1)")
    ap.add_argument("--work", type=Path, help="scratch dir (default: a new temporary one)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    from bench_warm import extract

    work = args.work or Path(tempfile.mkdtemp(prefix="tokmon-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        (work / "run").mkdir(exist_ok=True)
        cmp = Compare(args.corpus, extract(args.base, work), work / "run")
        cmp.series()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"differences: {cmp.bad}")
    return 1 if cmp.bad else 0


if __name__ == "__main__":
    sys.exit(main())
