"""Realistic, deterministic Claude Code transcript corpus (a config dir holding ``projects/``).

``generate(dest, size_mb=..., seed=...)`` writes sessions that look like real Claude Code data
(line types, key order, streaming groups, subagents in both layouts, resumed copies, progress
echoes, tool results, synthetic errors, malformed lines, titles) and returns the
:class:`~tokmon.demo.expected.Expected` ground truth computed from what it intended to write.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from tokmon.demo.expected import Expected, SessionExpected, TokenTotals
from tokmon.demo.text import TextPool
from tokmon.demo.timeline import MINUTE, Timeline, day_of, iso
from tokmon.paths import ensure_dir

MIB = 1 << 20
SYNTHETIC = "<synthetic>"

MODELS = [
    ("claude-opus-4-5-20251101", 0.30),
    ("claude-sonnet-4-5-20250929", 0.30),
    ("claude-sonnet-4-20250514", 0.12),
    ("claude-opus-4-1-20250805", 0.10),
    ("claude-haiku-4-5-20251001", 0.18),
]
SUB_MODELS = [("claude-haiku-4-5-20251001", 0.5), ("claude-sonnet-4-5-20250929", 0.5)]
# Versions: 1.0.x (no cache_creation object), 2.0.x (flat subagents), 2.1.x (nested subagents,
# titles, hooks); 2.1.114 adds ``usage.iterations`` (never to be added to the totals).
VERSIONS = ["1.0.53", "1.0.108", "2.0.42", "2.0.76", "2.1.7", "2.1.42", "2.1.114"]
PROJECTS = [
    "/home/alex/src/webshop",
    "/home/alex/src/api.gateway",
    "/home/alex/work/data-pipeline",
    "/home/alex/src/tokmon",
    "/home/alex/notes",
    "/home/alex/src/ml_experiments/vision",
    "/srv/repos/infra-terraform",
    "/home/alex/src/mobile-app",
]
TITLES = [
    "Fix flaky login test",
    "Refactor billing service",
    "Add dark mode toggle",
    "Investigate memory leak in worker",
    "Migrate CI to GitHub Actions",
    "Write API docs for /orders",
    "Speed up cold start",
    "Terraform state cleanup",
    "Café menu parser (UTF-8 fixes)",
    "Upgrade React to 19",
]
TOOLS = [
    ("Bash", 30),
    ("Read", 30),
    ("Edit", 18),
    ("Grep", 8),
    ("Write", 6),
    ("Glob", 4),
    ("TodoWrite", 3),
    ("WebFetch", 1),
]
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _encode_cwd(cwd: str) -> str:
    return re.sub(r"[/.]", "-", cwd)


@dataclass
class _Resp:
    """One API response as intended (the line that must win the dedup)."""

    session_id: str
    model: str
    inp: int
    out: int
    cc5: int
    cc1h: int
    cr: int
    rel: int  # active-time offset of the kept line


@dataclass
class _Conv:
    """Prompt-cache state of one conversation (main thread or a subagent)."""

    model: str
    ctx: int
    use_1h: bool = False
    cap: int = 160_000
    cached: int = 0
    idle_ms: int = 0


@dataclass
class _Written:
    session_id: str
    cwd: str
    version: str
    main_rel: str
    line_pos: list[int]  # active position (upper bound) of each complete main-file line


@dataclass
class _Plan:
    cwd: str
    model: str
    version: str
    weight: float
    force_sub: bool = False
    long_ctx: bool = False
    use_1h: bool = False
    malformed: bool = False
    partial_tail: bool = False
    synthetic: bool = False
    custom_title: bool = False
    ai_title: bool = False
    resume: bool = False
    at_end: bool = False
    big_lines: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _Corpus:
    """Corpus-wide state: randomness, text, timeline, output and ground truth."""

    def __init__(self, dest: Path, size_mb: float, seed: int, end: datetime, days: float):
        self.dest = dest
        self.rng = random.Random(seed)
        self.pool = TextPool(self.rng)
        end_ms = int(end.timestamp() * 1000)
        start_ms = end_ms - int(days * 86_400_000)
        self.timeline = Timeline(self.rng, start_ms, end_ms)
        self.target = int(size_mb * MIB)
        self.written_bytes = 0
        self.written: list[_Written] = []
        self.exp = Expected(seed=seed, size_mb=size_mb, start=iso(start_ms), end=iso(end_ms))
        self.over_days: set[str] = set()
        self.over_sessions: set[str] = set()

    # ids ---------------------------------------------------------------------------------
    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"

    def b58(self, n: int) -> str:
        return "".join(self.rng.choices(B58, k=n))

    def hexid(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def pick(self, table: list[tuple[str, float]] | list[tuple[str, int]]) -> str:
        return self.rng.choices([t[0] for t in table], weights=[t[1] for t in table])[0]

    def lognorm(self, median: float, sigma: float, lo: int, hi: int) -> int:
        return int(min(hi, max(lo, median * self.rng.lognormvariate(0.0, sigma))))

    # plan ----------------------------------------------------------------------------------
    def plans(self, size_mb: float) -> list[_Plan]:
        rng = self.rng
        n = max(8, int(6 + size_mb * 2.2))
        n_proj = min(len(PROJECTS), 3 + int(size_mb**0.5))
        projects = PROJECTS[:]
        rng.shuffle(projects)
        projects = projects[:n_proj]
        pw = [1.0 / (i + 1) for i in range(n_proj)]
        plans = []
        for _ in range(n):
            model = self.pick(MODELS)
            plans.append(
                _Plan(
                    cwd=rng.choices(projects, weights=pw)[0],
                    model=model,
                    version=rng.choice(VERSIONS),
                    weight=rng.lognormvariate(0.0, 0.8),
                    use_1h=rng.random() < 0.3,
                    long_ctx=model.startswith("claude-sonnet") and rng.random() < 0.08,
                    resume=rng.random() < 0.08,
                    synthetic=rng.random() < 0.1,
                )
            )
        # Forced features, so that even a small corpus has every one of them.
        models = [m for m, _ in MODELS]
        rng.shuffle(models)
        for p, m in zip(plans, models, strict=False):
            p.model = m
        plans[0].version, plans[0].force_sub = "1.0.108", True
        plans[1].version, plans[1].force_sub = "2.1.42", True
        plans[1].custom_title = plans[1].ai_title = True
        plans[2].version, plans[2].use_1h, plans[2].ai_title = "2.1.114", True, True
        plans[2].force_sub = True
        plans[3].model, plans[3].long_ctx = "claude-sonnet-4-5-20250929", True
        plans[3].malformed = plans[3].synthetic = plans[3].partial_tail = True
        plans[3].version = "2.0.76"
        plans[4].version, plans[4].custom_title = "2.1.7", True
        plans[5].version, plans[5].malformed = "1.0.53", True
        for p in plans[:5]:
            p.resume = False
        plans[-3].resume = True
        plans[-1].at_end = plans[-2].at_end = True
        plans[-1].resume = plans[-2].resume = False
        plans[-1].version = "2.1.42"
        if size_mb >= 5:
            for _ in range(max(1, round(size_mb / 12))):
                rng.choice(plans[1:]).big_lines += 1
        return plans

    def run(self, size_mb: float) -> Expected:
        plans = self.plans(size_mb)
        weights = [p.weight for p in plans]
        big_bytes = sum(p.big_lines for p in plans) * 1_000_000
        for i, plan in enumerate(plans):
            rest = sum(weights[i:])
            left = self.target - self.written_bytes - big_bytes
            budget = max(12_000, int(left * plan.weight / rest)) + plan.big_lines * 1_000_000
            big_bytes -= plan.big_lines * 1_000_000
            source = self.resume_source() if plan.resume else None
            sess = _Session(self, plan, budget, source)
            sess.build()
            self.written_bytes += sess.finalize()
        return self.finish()

    def resume_source(self) -> _Written | None:
        limit = int(self.timeline.active_ms * 0.7)
        cands = [w for w in self.written if len(w.line_pos) >= 6 and w.line_pos[-1] < limit]
        return self.rng.choice(cands) if cands else None

    # ground truth ----------------------------------------------------------------------------
    def record(self, resp: _Resp, wall_ms: int, project: str) -> None:
        exp = self.exp
        s = exp.sessions.get(resp.session_id)
        if s is None:
            s = exp.sessions[resp.session_id] = SessionExpected(resp.session_id, project)
        args = (resp.inp, resp.out, resp.cc5 + resp.cc1h, resp.cc1h, resp.cr)
        s.totals.add(*args)
        exp.totals.add(*args)
        day = day_of(wall_ms)
        exp.daily.setdefault(day, TokenTotals()).add(*args)
        exp.models.setdefault(resp.model, TokenTotals()).add(*args)
        if resp.model not in s.models:
            s.models.append(resp.model)
            s.models.sort()
        ts = iso(wall_ms)
        if s.first_activity is None or ts < s.first_activity:
            s.first_activity = ts
        if s.last_activity is None or ts > s.last_activity:
            s.last_activity = ts
        if (
            resp.model.startswith("claude-sonnet")
            and resp.inp + resp.cc5 + resp.cc1h + resp.cr > 200_000
        ):
            self.over_days.add(day)
            self.over_sessions.add(resp.session_id)

    def finish(self) -> Expected:
        exp = self.exp
        exp.total_bytes = self.written_bytes
        exp.files.sort()
        exp.daily = dict(sorted(exp.daily.items()))
        exp.models = dict(sorted(exp.models.items()))
        exp.sessions = dict(sorted(exp.sessions.items()))
        for s in exp.sessions.values():
            s.files.sort()
            s.title = exp.titles.get(s.session_id)
        exp.titles = dict(sorted(exp.titles.items()))
        exp.projects = sorted({s.project for s in exp.sessions.values()})
        exp.over_200k_days = sorted(self.over_days)
        exp.over_200k_sessions = sorted(self.over_sessions)
        return exp


class _Session:
    """Builds one session's files (main + subagents) on a relative clock, then places them."""

    def __init__(self, corpus: _Corpus, plan: _Plan, budget: int, source: _Written | None):
        self.c = corpus
        self.rng = corpus.rng
        self.pool = corpus.pool
        self.plan = plan
        self.budget = budget
        self.source = source
        if source is not None:
            plan.cwd, plan.version = source.cwd, source.version
        self.sid = corpus.uuid()
        self.cwd = plan.cwd
        self.version = plan.version
        self.old = plan.version.startswith("1.")
        self.new = plan.version.startswith("2.1")
        self.enc = _encode_cwd(plan.cwd)
        self.main = f"projects/{self.enc}/{self.sid}.jsonl"
        self.files: dict[str, list[Any]] = {self.main: []}
        self.line_pos: list[int] = []  # per main line (rel, upper bound)
        self.last_uuid: dict[str, str | None] = {self.main: None}
        self.fix: list[tuple[dict[str, Any], str, int]] = []
        self.resps: list[_Resp] = []
        self.t = 0
        self.est = 0
        self.min_pos = 0
        self.branch = self.rng.choice(["main", "master", "develop", "feature/login", "fix/ci"])
        self.slug = "-".join(
            (
                self.rng.choice(["brave", "quiet", "lucky", "swift", "calm"]),
                self.rng.choice(["otter", "falcon", "maple", "comet"]),
            )
        )
        self.big_left = plan.big_lines
        cap = self.rng.randint(120_000, 175_000)
        if plan.long_ctx:
            cap = self.rng.randint(230_000, 300_000)
        self.conv = _Conv(
            plan.model,
            ctx=self.rng.randint(14_000, 26_000),
            use_1h=plan.use_1h and not self.old,
            cap=cap,
        )
        self.big_input_done = not plan.long_ctx
        self.synthetic_left = 1 if plan.synthetic else 0
        self.titles: dict[str, str] = {}

    # low level -----------------------------------------------------------------------------
    def emit(self, fkey: str, obj: dict[str, Any] | bytes) -> None:
        self.files.setdefault(fkey, []).append(obj)
        if isinstance(obj, bytes):
            self.est += len(obj)
        else:
            self.est += len(orjson.dumps(obj)) + 25
        if fkey == self.main:
            self.line_pos.append(self.t)

    def env(
        self,
        fkey: str,
        typ: str,
        body: dict[str, Any],
        *,
        agent: str | None = None,
        rel: int | None = None,
        parent: str | None | bool = True,
    ) -> dict[str, Any]:
        """A line with the common envelope, in the key order of this session's version."""
        u = self.c.uuid()
        par = self.last_uuid.get(fkey) if parent is True else parent
        d: dict[str, Any] = {"parentUuid": par, "isSidechain": agent is not None}
        common = {"userType": "external"}
        if self.new:
            common["entrypoint"] = "cli"
        common.update(cwd=self.cwd, sessionId=self.sid, version=self.version, gitBranch=self.branch)
        if not self.new:
            d.update(common)
            if agent:
                d["agentId"] = agent
            d.update(body)
            d.update(type=typ, uuid=u, timestamp="")
        else:
            if agent:
                d["agentId"] = agent
            d.update(body)
            d.update(type=typ, uuid=u, timestamp="")
            d.update(common)
            d["slug"] = self.slug
        self.fix.append((d, "timestamp", self.t if rel is None else rel))
        if typ in ("user", "assistant", "system", "attachment"):
            self.last_uuid[fkey] = u
        return d

    def tick(self, lo: int, hi: int) -> None:
        self.t += self.rng.randint(lo, hi)

    # content ---------------------------------------------------------------------------------
    def tool_use(self, name: str) -> dict[str, Any]:
        rng = self.rng
        path = (
            f"{self.cwd}/src/{rng.choice(['app', 'lib', 'api', 'ui'])}/mod{rng.randint(1, 99)}.py"
        )
        if name == "Bash":
            inp: dict[str, Any] = {
                "command": self.pool.text_of(self.c.lognorm(60, 0.8, 5, 2000)),
                "description": "Run the command",
            }
        elif name == "Read":
            inp = {"file_path": path}
        elif name == "Edit":
            inp = {
                "file_path": path,
                "old_string": self.pool.text_of(self.c.lognorm(300, 1.0, 5, 20_000)),
                "new_string": self.pool.text_of(self.c.lognorm(350, 1.0, 5, 20_000)),
            }
        elif name == "Write":
            inp = {
                "file_path": path,
                "content": self.pool.text_of(self.c.lognorm(3000, 1.2, 50, 250_000)),
            }
        elif name == "Task":
            inp = {
                "description": "Research the codebase",
                "prompt": self.pool.text_of(self.c.lognorm(900, 0.6, 100, 8000)),
                "subagent_type": rng.choice(["general-purpose", "Explore", "code-reviewer"]),
            }
        elif name == "TodoWrite":
            inp = {
                "todos": [
                    {
                        "content": self.pool.text_of(40),
                        "status": "pending",
                        "activeForm": self.pool.text_of(30),
                    }
                    for _ in range(rng.randint(1, 6))
                ]
            }
        else:
            inp = {"pattern": self.pool.text_of(12), "path": self.cwd}
        return {"type": "tool_use", "id": "toolu_01" + self.c.b58(22), "name": name, "input": inp}

    def usage_dict(self, inp: int, out: int, cc5: int, cc1h: int, cr: int) -> dict[str, Any]:
        u: dict[str, Any] = {
            "input_tokens": inp,
            "cache_creation_input_tokens": cc5 + cc1h,
            "cache_read_input_tokens": cr,
        }
        if not self.old:
            u["cache_creation"] = {
                "ephemeral_5m_input_tokens": cc5,
                "ephemeral_1h_input_tokens": cc1h,
            }
        u["output_tokens"] = out
        u["service_tier"] = "standard"
        if self.version == "2.1.114":
            u["inference_geo"] = "not_available"
            u["iterations"] = [
                {
                    "input_tokens": inp,
                    "output_tokens": out,
                    "cache_read_input_tokens": cr,
                    "cache_creation_input_tokens": cc5 + cc1h,
                    "type": "message",
                }
            ]
        return u

    def response(
        self,
        conv: _Conv,
        fkey: str,
        agent: str | None,
        want_tool: bool,
        tool_names: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One API response as 1-12 streaming lines; returns (tool_use blocks, kept line)."""
        rng, c = self.rng, self.c
        blocks: list[dict[str, Any]] = []
        if rng.random() < 0.45:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": self.pool.text_of(c.lognorm(500, 1.0, 20, 30_000)),
                    "signature": self.pool.b64_of(rng.randint(300, 2400)),
                }
            )
        if rng.random() < 0.8 or not want_tool:
            blocks.append(
                {"type": "text", "text": self.pool.text_of(c.lognorm(250, 1.3, 5, 120_000))}
            )
        tools: list[dict[str, Any]] = []
        if want_tool:
            if tool_names is None:
                r = rng.random()
                k = 1 if r < 0.7 else rng.randint(2, 4) if r < 0.96 else rng.randint(5, 10)
                tool_names = []
                for _ in range(k):
                    sub_ok = agent is None and rng.random() < 0.025
                    tool_names.append("Task" if sub_ok else c.pick(TOOLS))
            tools = [self.tool_use(n) for n in tool_names[:10]]
        blocks = (blocks + tools)[-12:]
        # Token counters from the conversation's cache state.
        if conv.ctx > conv.cap:
            conv.ctx = rng.randint(18_000, 40_000)
            conv.cached = 0
            if agent is None:
                self.emit(
                    fkey,
                    self.env(
                        fkey,
                        "system",
                        {
                            "content": "Conversation compacted",
                            "subtype": "compact_boundary",
                            "compactMetadata": {"trigger": "auto", "preTokens": conv.cap},
                        },
                    ),
                )
        expired = conv.idle_ms > (60 if conv.use_1h else 5) * MINUTE
        if conv.cached == 0 or expired:
            cr = 0 if conv.cached == 0 and rng.random() < 0.5 else min(conv.ctx, 12_500)
            cc = conv.ctx - cr
        else:
            cr, cc = conv.cached, conv.ctx - conv.cached
        conv.cached = conv.ctx
        conv.idle_ms = 0
        inp = (
            rng.choice([1, 2, 3, 4, 5, 6, 8, 9, 10, 12])
            if rng.random() < 0.9
            else rng.randint(20, 4000)
        )
        if not self.big_input_done and agent is None and len(self.resps) >= 2:
            inp = rng.randint(200_500, 230_000)  # a huge uncached paste (sonnet > 200k tier)
            self.big_input_done = True
        cc1h = 0
        if conv.use_1h:
            cc1h = cc if rng.random() < 0.8 else cc // 2
        cc5 = cc - cc1h
        final = c.lognorm(180, 1.2, 1, 32_000)
        start = rng.choice([1, 1, 2, 3, 4, 5, 8, 12, 26])
        never_final = rng.random() < 0.25
        final = start if never_final else max(final, start + 1)
        conv.ctx += final + rng.randint(0, 40)
        model = conv.model
        msg_id = "msg_01" + c.b58(22)
        req_id = "req_011C" + c.b58(20)
        n = len(blocks)
        outs = [start] * n
        if not never_final:
            outs[-1] = final
            if n > 2 and rng.random() < 0.3:  # some builds report growing partial counts
                for i in range(1, n - 1):
                    outs[i] = max(outs[i - 1], min(final - 1, start + (final - start) * i // n))
        kept_i = n - 1 if not never_final else 0
        kept: dict[str, Any] = {}
        for i, block in enumerate(blocks):
            if i:
                self.tick(40, 1800)
            last = i == n - 1
            stop = ("tool_use" if want_tool else "end_turn") if (last or self.old) else None
            msg: dict[str, Any] = {
                "model": model,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": [block],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": self.usage_dict(inp, outs[i], cc5, cc1h, cr),
            }
            line = self.env(fkey, "assistant", {"message": msg, "requestId": req_id}, agent=agent)
            self.emit(fkey, line)
            if i == kept_i:
                kept = line
                kept_rel = self.t
        self.resps.append(_Resp(self.sid, model, inp, final, cc5, cc1h, cr, kept_rel))
        kept["_rel"] = kept_rel
        return tools, kept

    def tool_result(self, conv: _Conv, fkey: str, agent: str | None, tool: dict[str, Any]) -> None:
        rng, c = self.rng, self.c
        name = tool["name"]
        median = {"Read": 3500, "Bash": 500, "Grep": 700, "WebFetch": 3000, "Glob": 300}
        size = c.lognorm(median.get(name, 120), 1.3, 10, 300_000)
        big = False
        if self.big_left and name in ("Read", "Bash"):
            big, self.big_left = True, self.big_left - 1
            # ~1 MB lines (toolUseResult repeats the content from 2.0 on)
            size = rng.randint(470_000, 520_000) * (2 if self.old else 1)
        content = self.pool.text_of(size)
        result: dict[str, Any] = {
            "tool_use_id": tool["id"],
            "type": "tool_result",
            "content": content,
        }
        if name == "Bash" and rng.random() < 0.08:
            result["is_error"] = True
        body: dict[str, Any] = {"message": {"role": "user", "content": [result]}}
        if not self.old:
            if name == "Read":
                tur: Any = {
                    "type": "text",
                    "file": {
                        "filePath": tool["input"]["file_path"],
                        "content": content,
                        "numLines": size // 40,
                        "startLine": 1,
                        "totalLines": size // 40,
                    },
                }
            elif name == "Bash":
                tur = {"stdout": content, "stderr": "", "interrupted": False, "isImage": False}
            elif name == "Edit":
                tur = {
                    "filePath": tool["input"]["file_path"],
                    "oldString": tool["input"]["old_string"],
                    "newString": tool["input"]["new_string"],
                    "originalFile": self.pool.text_of(c.lognorm(2500, 1.0, 50, 60_000)),
                    "structuredPatch": [],
                    "userModified": False,
                    "replaceAll": False,
                }
            else:
                tur = content[:2000]
            body["toolUseResult"] = tur
        if big and rng.random() < 0.5:  # a screenshot instead of text: ~1 MB of base64
            result["content"] = [
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": self.pool.b64_of(rng.randint(900_000, 1_050_000)),
                    },
                }
            ]
            body.pop("toolUseResult", None)
        self.emit(fkey, self.env(fkey, "user", body, agent=agent))
        conv.ctx += min(size // 4, 25_000)

    def echo(self, kept: dict[str, Any], agent: str, task_id: str) -> None:
        """A ``progress`` line in the main file echoing a subagent response (same ids/usage)."""
        rel = kept["_rel"]
        data: dict[str, Any] = {
            "message": {
                "type": "assistant",
                "message": kept["message"],
                "requestId": kept["requestId"],
                "uuid": kept["uuid"],
                "timestamp": "",
            },
            "normalizedMessages": [],
            "type": "agent_progress",
            "prompt": "",
            "agentId": agent,
        }
        self.fix.append((data["message"], "timestamp", rel))
        line = self.env(
            self.main,
            "progress",
            {
                "data": data,
                "toolUseID": "agent_msg_01" + self.c.b58(22),
                "parentToolUseID": task_id,
            },
            rel=rel,
        )
        self.emit(self.main, line)

    def subagent(self, task: dict[str, Any]) -> None:
        rng, c = self.rng, self.c
        if self.new:
            aid = "a" + c.hexid(16)
            fkey = f"projects/{self.enc}/{self.sid}/subagents/agent-{aid}.jsonl"
            if rng.random() < 0.5:
                meta = {"agentType": task["input"]["subagent_type"]}
                self.files[fkey[: -len(".jsonl")] + ".meta.json"] = [orjson.dumps(meta)]
        else:
            aid = c.hexid(8)
            fkey = f"projects/{self.enc}/agent-{aid}.jsonl"
        self.last_uuid[fkey] = None
        conv = _Conv(
            c.pick(SUB_MODELS) if rng.random() < 0.8 else self.conv.model,
            ctx=rng.randint(8_000, 16_000),
        )
        prompt = {"message": {"role": "user", "content": task["input"]["prompt"]}}
        self.emit(fkey, self.env(fkey, "user", prompt, agent=aid))
        steps = rng.randint(2, 14)
        kept: dict[str, Any] = {}
        tools_used = 0
        for i in range(steps):
            self.tick(600, 4000)
            tools, kept = self.response(conv, fkey, aid, want_tool=i < steps - 1)
            if not self.old and rng.random() < 0.6:
                self.echo(kept, aid, task["id"])
            for tool in tools:
                tools_used += 1
                self.tick(100, 8000)
                self.tool_result(conv, fkey, aid, tool)
            if self.est > self.budget:
                break
        summary = self.pool.text_of(c.lognorm(1200, 0.8, 50, 20_000))
        usage = {k: v for k, v in kept["message"]["usage"].items() if k != "iterations"}
        body: dict[str, Any] = {
            "message": {
                "role": "user",
                "content": [
                    {
                        "tool_use_id": task["id"],
                        "type": "tool_result",
                        "content": [{"type": "text", "text": summary}],
                    }
                ],
            }
        }
        body["toolUseResult"] = {
            "status": "completed",
            "prompt": task["input"]["prompt"][:200],
            "agentId": aid,
            "content": [{"type": "text", "text": summary}],
            "totalDurationMs": rng.randint(5_000, 400_000),
            "totalTokens": sum(
                usage[k]
                for k in (
                    "input_tokens",
                    "output_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                )
            ),
            "totalToolUseCount": tools_used,
            "usage": usage,
        }
        self.tick(50, 500)
        self.emit(self.main, self.env(self.main, "user", body))
        self.conv.ctx += len(summary) // 4

    def synthetic(self, rel: int) -> None:
        msg = {
            "id": self.c.uuid(),
            "container": None,
            "model": SYNTHETIC,
            "role": "assistant",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                "service_tier": None,
                "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
            },
            "content": [
                {
                    "type": "text",
                    "text": self.rng.choice(
                        [
                            'API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
                            '"message":"Overloaded"}}',
                            "Claude AI usage limit reached|1767225600",
                            "5-hour limit reached ∙ resets 11pm",
                        ]
                    ),
                }
            ],
        }
        # Same timestamp as the response just kept: never the first or last entry of a block.
        line = self.env(
            self.main, "assistant", {"message": msg, "isApiErrorMessage": True}, rel=rel
        )
        self.emit(self.main, line)
        self.c.exp.synthetic_lines += 1

    def malformed(self) -> None:
        kind = self.rng.random()
        if kind < 0.6:
            some = orjson.dumps(
                {
                    "parentUuid": self.c.uuid(),
                    "isSidechain": False,
                    "type": "assistant",
                    "message": {"id": "msg_01" + self.c.b58(22), "usage": {"input_tokens": 5}},
                }
            )
            raw = some[: self.rng.randint(20, len(some) - 5)] + b"\n"
        else:
            raw = b"\x7b\x7b not json at all }\n"
        self.emit(self.main, raw)
        self.c.exp.malformed_lines += 1

    def meta_line(self, obj: dict[str, Any]) -> None:
        self.emit(self.main, obj)

    # session -------------------------------------------------------------------------------
    def turn(self, first: bool) -> None:
        rng, c, conv = self.rng, self.c, self.conv
        r = rng.random()
        idle = (
            c.lognorm(40_000, 1.0, 2_000, 600_000)
            if r < 0.9
            else rng.randint(6, 25) * MINUTE
            if r < 0.98
            else rng.randint(30, 120) * MINUTE
        )
        if first:
            idle = 0
        self.t += idle
        conv.idle_ms += idle
        if not self.old:
            mid = c.uuid()
            snap = {"messageId": mid, "trackedFileBackups": {}, "timestamp": ""}
            self.fix.append((snap, "timestamp", self.t))
            self.meta_line(
                {
                    "type": "file-history-snapshot",
                    "messageId": mid,
                    "snapshot": snap,
                    "isSnapshotUpdate": False,
                }
            )
        if self.new and rng.random() < 0.1:
            for op in ("enqueue", "dequeue"):
                q: dict[str, Any] = {"type": "queue-operation", "operation": op, "timestamp": ""}
                if op == "enqueue":
                    q["content"] = [{"type": "text", "text": self.pool.text_of(80)}]
                q["sessionId"] = self.sid
                self.fix.append((q, "timestamp", self.t))
                self.meta_line(q)
        psize = c.lognorm(250, 1.0, 3, 4000) if rng.random() < 0.95 else rng.randint(5_000, 40_000)
        prompt = self.pool.text_of(psize)
        body: dict[str, Any] = {"message": {"role": "user", "content": prompt}}
        if self.new:
            body = {"promptId": c.uuid(), **body}
        self.emit(self.main, self.env(self.main, "user", body))
        conv.ctx += psize // 4
        if self.new and rng.random() < 0.3:
            self.meta_line(
                {"type": "last-prompt", "lastPrompt": prompt[:200], "sessionId": self.sid}
            )
        steps = 1 + min(29, int(rng.expovariate(1 / 4.0)))
        for s in range(steps):
            self.tick(700, 6000)
            names = None
            if self.plan.force_sub:
                names, self.plan.force_sub = ["Task"], False
            want = s < steps - 1 or names is not None
            tools, kept = self.response(conv, self.main, None, want, names)
            if self.synthetic_left and len(self.resps) > 2:
                self.synthetic(kept["_rel"])
                self.synthetic_left -= 1
            for tool in tools:
                if self.new and rng.random() < 0.3:
                    self.emit(
                        self.main,
                        self.env(
                            self.main,
                            "progress",
                            {
                                "data": {
                                    "type": "hook_progress",
                                    "hookEvent": "PreToolUse",
                                    "hookName": f"PreToolUse:{tool['name']}",
                                    "command": "lint.sh",
                                },
                                "parentToolUseID": tool["id"],
                                "toolUseID": tool["id"],
                            },
                        ),
                    )
                self.tick(100, 20_000)
                if tool["name"] == "Task":
                    self.subagent(tool)
                else:
                    self.tool_result(conv, self.main, None, tool)
                if self.old and rng.random() < 0.15:
                    self.emit(
                        self.main,
                        self.env(
                            self.main,
                            "system",
                            {
                                "content": f"Running PostToolUse:{tool['name']}...",
                                "isMeta": False,
                                "toolUseID": tool["id"],
                                "level": "info",
                            },
                        ),
                    )
            if self.est > self.budget:
                break
        if self.new:
            self.tick(5, 300)
            if rng.random() < 0.5:
                self.emit(
                    self.main,
                    self.env(
                        self.main,
                        "system",
                        {
                            "subtype": "stop_hook_summary",
                            "hookCount": 1,
                            "hookInfos": [{"command": "notify.sh idle", "durationMs": 97}],
                            "hookErrors": [],
                            "preventedContinuation": False,
                            "stopReason": "",
                            "hasOutput": True,
                            "level": "suggestion",
                        },
                    ),
                )
            if rng.random() < 0.5:
                self.emit(
                    self.main,
                    self.env(
                        self.main,
                        "system",
                        {
                            "subtype": "turn_duration",
                            "durationMs": rng.randint(2_000, 400_000),
                            "messageCount": len(self.files[self.main]),
                            "isMeta": False,
                        },
                    ),
                )
        if first and self.new and (self.plan.ai_title or rng.random() < 0.5):
            title = rng.choice(TITLES)
            self.meta_line({"type": "ai-title", "aiTitle": title, "sessionId": self.sid})
            self.titles.setdefault("ai", title)
        if (self.plan.custom_title or (self.new and rng.random() < 0.03)) and not first:
            title = rng.choice(TITLES) + " (renamed)"
            self.meta_line({"type": "custom-title", "customTitle": title, "sessionId": self.sid})
            self.titles["custom"] = title
            self.plan.custom_title = False
        if self.plan.malformed or rng.random() < 0.01:
            self.malformed()
            self.plan.malformed = False

    def copy_source(self) -> None:
        """Begin with a verbatim copy of an earlier session's lines (a resumed session)."""
        src = self.source
        assert src is not None
        data = (self.c.dest / src.main_rel).read_bytes()
        lines = data.splitlines(keepends=True)
        complete = [ln for ln in lines if ln.endswith(b"\n")]
        n = len(complete)
        k = self.rng.randint(max(3, n // 2), n)
        while k > 3 and sum(len(x) for x in complete[:k]) > self.budget * 0.7:
            k = max(3, k * 2 // 3)
        exp = self.c.exp
        for ln in complete[:k]:
            try:
                orjson.loads(ln)
            except orjson.JSONDecodeError:
                exp.malformed_lines += 1  # copies count: they are lines on disk too
            else:
                exp.synthetic_lines += b'"model":"<synthetic>"' in ln
            self.files[self.main].append(ln)
            self.line_pos.append(0)  # placed at or before this session's start
            self.est += len(ln)
        self.min_pos = src.line_pos[k - 1] + self.rng.randint(1, 30) * MINUTE
        self.c.exp.resumed[self.sid] = src.session_id
        # The resumed conversation carries the old context.
        self.conv.ctx += min(120_000, sum(len(x) for x in complete[:k]) // 8)

    def build(self) -> None:
        rng = self.rng
        if self.source is not None:
            self.copy_source()
        elif not self.new and rng.random() < 0.3:
            self.meta_line(
                {"type": "summary", "summary": rng.choice(TITLES), "leafUuid": self.c.uuid()}
            )
        if self.new:
            if rng.random() < 0.5:
                self.emit(
                    self.main,
                    self.env(
                        self.main,
                        "attachment",
                        {
                            "attachment": {
                                "type": "hook_success",
                                "hookName": "SessionStart:startup",
                                "toolUseID": self.c.uuid(),
                                "hookEvent": "SessionStart",
                                "content": "",
                                "stdout": "",
                                "stderr": "",
                                "exitCode": 0,
                                "command": "notify.sh started",
                                "durationMs": rng.randint(50, 1500),
                            }
                        },
                    ),
                )
            if rng.random() < 0.3:
                self.meta_line(
                    {
                        "type": "permission-mode",
                        "permissionMode": "acceptEdits",
                        "sessionId": self.sid,
                    }
                )
        first = True
        while first or self.est < self.budget:
            self.turn(first)
            first = False
        if self.plan.partial_tail or rng.random() < 0.03:
            cut = orjson.dumps(
                {
                    "parentUuid": self.last_uuid[self.main],
                    "isSidechain": False,
                    "type": "assistant",
                    "message": {"id": "msg_01"},
                }
            )
            self.files[self.main].append(cut[: len(cut) // 2])  # still being written: no newline
            self.c.exp.malformed_lines += 1

    def finalize(self) -> int:
        """Place the session on the timeline, fill timestamps, write files; return bytes."""
        c, rng, tl = self.c, self.rng, self.c.timeline
        span = max(1, self.t)
        room = tl.active_ms - self.min_pos - 30_000
        scale = 1.0 if span <= room * 0.9 else max(room, 1) * 0.9 / span
        length = int(span * scale)
        if self.plan.at_end:
            p0 = max(self.min_pos, tl.active_ms - length - rng.randint(20_000, 40_000))
        else:
            p0 = rng.randint(self.min_pos, max(self.min_pos, tl.active_ms - length - 30_000))

        def wall(rel: int) -> int:
            return tl.wall(p0 + int(rel * scale))

        for obj, key, rel in self.fix:
            obj[key] = iso(wall(rel))
        for resp in self.resps:
            c.record(resp, wall(resp.rel), self.cwd)
        if self.titles:
            c.exp.titles[self.sid] = self.titles.get("custom") or self.titles["ai"]
        total = 0
        for rel_path, lines in self.files.items():
            path = c.dest / rel_path
            ensure_dir(path.parent)
            chunks = []
            for obj in lines:
                if isinstance(obj, bytes):
                    chunks.append(obj)
                else:
                    obj.pop("_rel", None)
                    chunks.append(orjson.dumps(obj) + b"\n")
            if rel_path.endswith(".meta.json"):
                chunks = [chunks[0].rstrip(b"\n")]
            data = b"".join(chunks)
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600
            )
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            total += len(data)
            c.exp.files.append(rel_path)
            if rel_path.endswith(".jsonl") and self.sid in c.exp.sessions:
                c.exp.sessions[self.sid].files.append(rel_path)
        c.written.append(
            _Written(
                self.sid,
                self.cwd,
                self.version,
                self.main,
                [p0 + int(r * scale) for r in self.line_pos],
            )
        )
        return total


def generate(
    dest: Path, *, size_mb: float, seed: int = 0, end: datetime | None = None, days: float = 30
) -> Expected:
    """Write a Claude config dir (``dest/projects/...``) of about ``size_mb`` MiB."""
    dest = Path(dest)
    if size_mb <= 0 or days <= 0:
        raise ValueError("size_mb and days must be positive")
    projects = dest / "projects"
    if projects.exists() and any(projects.iterdir()):
        raise FileExistsError(f"{projects} already holds files; use an empty destination")
    if end is None:
        end = datetime.now(timezone.utc)
    elif end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    ensure_dir(projects)
    return _Corpus(dest, size_mb, seed, end, days).run(size_mb)
