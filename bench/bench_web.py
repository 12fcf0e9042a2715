#!/usr/bin/env python3
"""Benchmark ``tokmon web``: first paint in headless Chromium and append-to-DOM latency.

    python bench/bench_web.py [--mb 500] [--keep DIR] [--corpus DIR] [--loads 10]
                              [--appends 10] [--idle 30] [--json] [--in-place]

Uses a generated corpus (``--keep`` reuses the dir bench_engine.py fills, see
.ci/bench/10-engine.sh) or ``--corpus`` (a Claude config dir). The ledger is warmed first
(``tokmon daily --json`` with a fresh TOKMON_HOME), then ``tokmon web`` starts and a real
headless Chromium (selenium + chromedriver) loads the page ``--loads`` times. From Chromium's
own performance timeline:

* first paint: ``first-contentful-paint`` relative to the navigation start (the request);
  target: median under 300 ms
* numbers painted: the page's ``tokmon-data`` mark (overview figures rendered from the API)
* append -> DOM: a new assistant line is appended to a bench-only transcript (created in the
  corpus and removed afterwards); time until the overview's figure changes, no reload

* idle CPU: the server's user + system CPU over ``--idle`` seconds with the page open

The server is this checkout installed as ``scripts/install.py`` installs it (a venv cached per
source hash under ``$TOKMON_BENCH_DIR/installed``: bench/_installed.py), run through its ``tokmon``
console script; ``--in-place``: ``python -m tokmon`` on the interpreter running this script (the
old way). The figures name which (``tokmon``).

Prints the figures and PASS/FAIL; exit code 1 if the first-paint target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from _installed import Target, add_argument, resolve  # noqa: E402
from bench_server import usage_line  # noqa: E402

TARGET_FCP_MS = 300.0


def start_web(target: Target, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*target.tokmon, "web", "--no-open", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or []], daemon=True).start()
    first = lines.get(timeout=120)
    return proc, first.split(": ", 1)[1].strip()


def api(base: str, token: str, path: str) -> Any:
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,800",
        "--no-first-run",
        "--disable-extensions",
    ):
        opts.add_argument(a)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        opts.binary_location = binary
    return webdriver.Chrome(
        options=opts, service=Service(executable_path=shutil.which("chromedriver"))
    )


def wait(pred: Any, timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = pred()
        except Exception:
            v = None
        if v:
            return v
        time.sleep(0.005)
    raise TimeoutError("condition not met")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.corpus:
        corpus = Path(args.corpus)
    else:
        from bench_engine import prepare_corpus

        corpus, _ = prepare_corpus(args.mb, 0, Path(args.keep) if args.keep else None)
    size = sum(p.stat().st_size for p in (corpus / "projects").rglob("*.jsonl"))
    fig: dict[str, Any] = {"corpus_mb": round(size / 2**20, 1), "tokmon": args.target.describe()}
    home = Path(tempfile.mkdtemp(prefix="tokmon-bench-web-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update(
        {"TOKMON_HOME": str(home / "tokmon"), "CLAUDE_CONFIG_DIR": str(corpus), "HOME": str(home)}
    )
    env = args.target.env(env)
    t = time.perf_counter()
    subprocess.run(
        [*args.target.tokmon, "daily", "--json"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    fig["ledger_build_s"] = round(time.perf_counter() - t, 2)
    extra_dir = corpus / "projects" / "-bench-web"
    proc, url = start_web(args.target, env)
    drv = None
    try:
        base, token = url.split("/?token=")
        t = time.perf_counter()
        api(base, token, "/api/summary")
        fig["server_ready_s"] = round(time.perf_counter() - t, 2)
        drv = browser()
        drv.get(url)  # trades the token for the cookie
        wait(lambda: drv.execute_script("return document.body.dataset.ready") == "1")
        fcp, data = [], []
        for i in range(args.loads):
            drv.get(f"{base}/?load={i}")
            wait(
                lambda: drv.execute_script(
                    "return performance.getEntriesByName('tokmon-data').length"
                    " && performance.getEntriesByName('first-contentful-paint').length"
                )
            )
            p = drv.execute_script(
                "const f = performance.getEntriesByName('first-contentful-paint')[0];"
                "const d = performance.getEntriesByName('tokmon-data')[0];"
                "return [f ? f.startTime : null, d ? d.startTime : null]"
            )
            if p[0] is not None:
                fcp.append(p[0])
            data.append(p[1])
        fig["first_paint_ms"] = {
            "median": round(statistics.median(fcp), 1),
            "p95": round(pct(fcp, 0.95), 1),
            "n": len(fcp),
        }
        fig["numbers_painted_ms"] = {
            "median": round(statistics.median(data), 1),
            "p95": round(pct(data, 0.95), 1),
        }
        # append -> DOM (overview, no reload)
        extra_dir.mkdir(exist_ok=True)
        sid = str(uuid.uuid4())
        path = extra_dir / f"{sid}.jsonl"
        path.write_text(usage_line(sid, "/bench/web", 1000, 500))
        drv.get(f"{base}/")
        wait(lambda: drv.execute_script("return document.body.dataset.ready") == "1")
        time.sleep(1.5)
        lat = []
        for _ in range(args.appends):
            before = drv.find_element("id", "today-tokens").get_attribute("data-value")
            t0 = time.monotonic()
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(usage_line(sid, "/bench/web", 1000, 500))
            wait(
                lambda b=before: (
                    drv.find_element("id", "today-tokens").get_attribute("data-value") != b
                ),
                timeout=30,
            )
            lat.append((time.monotonic() - t0) * 1000)
            time.sleep(0.3)
        fig["append_to_dom_ms"] = {
            "median": round(statistics.median(lat), 1),
            "p95": round(pct(lat, 0.95), 1),
            "n": len(lat),
        }
        if args.idle > 0:  # server CPU with the page open (event stream connected), no changes
            import psutil

            time.sleep(4)  # past the coalesced ledger save after the appends
            ps = psutil.Process(proc.pid)
            c0 = sum(ps.cpu_times()[:2])
            time.sleep(args.idle)
            fig["idle_cpu_s"] = {
                "seconds": args.idle,
                "cpu": round(sum(ps.cpu_times()[:2]) - c0, 3),
            }
    finally:
        if drv is not None:
            drv.quit()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(extra_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    fig["pass"] = fig["first_paint_ms"]["median"] < TARGET_FCP_MS
    return fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=500, help="generated corpus size (MiB)")
    ap.add_argument("--keep", help="generate into / reuse this dir (as bench_engine.py)")
    ap.add_argument("--corpus", help="use this Claude config dir instead of generating")
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--appends", type=int, default=10)
    ap.add_argument("--idle", type=float, default=30, help="idle seconds for the CPU figure")
    ap.add_argument("--json", action="store_true")
    add_argument(ap)
    args = ap.parse_args()
    args.target = resolve(args.in_place)
    fig = run(args)
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        for k, v in fig.items():
            print(f"{k:20} {v}")
        print(
            f"first paint median {fig['first_paint_ms']['median']} ms "
            f"(target < {TARGET_FCP_MS:.0f}): {'PASS' if fig['pass'] else 'FAIL'}"
        )
    return 0 if fig["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
