"""The injected environment of one CLI run (httpie style: tests pass their own)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tokmon import lazylog
from tokmon.config import Config, load_config
from tokmon.leanclass import dataclass, field
from tokmon.paths import TokmonPaths, get_paths

if TYPE_CHECKING:
    from tokmon.core.engine import Engine


class CLIError(Exception):
    """A user error: printed as one line, exit with ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    """Streams, environment, paths and config for one run; builds the engine lazily."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    json_output: bool = False
    color: bool = True
    demo: bool = False
    config_path: Path | None = None
    log_level: str = "warning"
    #: the run is the whole process (it exits after the command): its engine is short-lived
    program: bool = False
    _paths: TokmonPaths | None = None
    _config: Config | None = None
    _engine: Engine | None = None

    @property
    def paths(self) -> TokmonPaths:
        if self._paths is None:
            self._paths = get_paths(self.env)
        return self._paths

    @property
    def config(self) -> Config:
        if self._config is None:
            from tokmon.config import ConfigError

            try:
                self._config = load_config(self.paths, self.config_path)
            except ConfigError as exc:
                raise CLIError("\ntokmon: error: ".join(exc.problems)) from None
        return self._config

    def warn(self, message: str) -> None:
        self.stderr.write(f"tokmon: warning: {message}\n")

    def roots(self) -> list[Path] | None:
        """Explicit roots for demo mode; None means discover from the environment."""
        if not self.demo:
            return None
        from tokmon.demo.cache import ensure_demo_corpus

        return [ensure_demo_corpus(self.paths) / "projects"]

    def engine(
        self,
        refresh: bool = True,
        auto_demo: bool = False,
        agents: bool = False,
        lasting: bool = False,
        missing_ok: bool = False,
    ) -> Engine:
        """A refreshed :class:`tokmon.core.engine.Engine`, built once per run.

        With ``auto_demo`` (the bare overview), a machine without Claude data gets the
        generated demo corpus instead of an empty screen. ``agents`` also reads the other
        coding agents' logs (a Claude-only report never pays for their discovery).
        ``lasting``: the command keeps refreshing it (``watch``, ``export otlp --follow``);
        otherwise it is :attr:`~tokmon.core.engine.Engine.short_lived`. ``missing_ok``: no
        Claude Code transcripts is no warning (``tokmon agents`` says so in its table).
        """
        if self._engine is None:
            from tokmon.core.engine import Engine
            from tokmon.core.pricing import PricingError

            if not self.demo:
                from tokmon.core.discovery import claude_dir_problem, claude_dir_usable

                problem = claude_dir_problem(self.env)
                if problem and not claude_dir_usable(self.env):
                    # a typo must not silently become demo data or an empty report
                    raise CLIError(
                        f"{problem} (set it to the Claude config dir that holds "
                        "projects/, or unset it; see `tokmon doctor`)"
                    )
                if problem:  # some entries usable: read those, say which were skipped
                    self.warn(problem)
            try:
                eng = Engine(
                    roots=self.roots(),
                    paths=self.paths,
                    config=self.config,
                    env=self.env,
                    persist=not self.demo,
                    agents=agents and not self.demo,
                )
                if not eng.roots and auto_demo and not self.demo:
                    where = ", ".join(str(r) for r in eng.candidate_roots)
                    self.demo = True
                    if not self.json_output:  # at the top, before any table
                        self.stdout.write(
                            f"DEMO DATA - no Claude Code data in {where}; the numbers below are "
                            "generated (`tokmon --demo` shows them on purpose)\n\n"
                        )
                    self.stderr.write(
                        f"tokmon: no Claude Code data in {where}: showing a "
                        'generated demo (JSON carries "demo": true)\n'
                    )
                    eng = Engine(
                        roots=self.roots(),
                        paths=self.paths,
                        config=self.config,
                        env=self.env,
                        persist=False,
                    )
            except PricingError as exc:
                raise CLIError(str(exc)) from exc
            self._engine = eng
            eng.on_warning = self.warn  # notices found after refresh (a ledger broken late)
            eng.short_lived = not lasting  # one answer (Engine.short_lived)
            eng.freeze_after_check = self.program and not lasting  # then the process exits
            if not eng.roots and not missing_ok:
                where = ", ".join(str(r) for r in eng.candidate_roots)
                self.warn(f"no Claude Code transcripts found (looked in {where}); try --demo")
            if refresh:
                self._refresh()
        return self._engine

    def _refresh(self) -> None:
        progress = None
        bar = None
        if _isatty(self.stderr) and not self.env.get("CI"):
            try:
                after = float(self.env.get("TOKMON_PROGRESS_AFTER", "0.5"))
            except ValueError:
                after = 0.5
            bar = _ProgressBar(self.stderr, after)
            progress = bar.update
        assert self._engine is not None
        try:
            changes = self._engine.refresh(progress)
        finally:
            if bar is not None:
                bar.close()
        for w in changes.warnings:
            if self.demo:  # the generated corpus's deliberate traps (docs/demo-corpus.md)
                lazylog.getLogger("tokmon").info("demo corpus: %s", w)
            else:
                self.warn(w)

    def console(self) -> Any:
        from rich.console import Console

        return Console(
            file=self.stdout,
            no_color=not self.color,
            color_system="auto" if self.color else None,
            highlight=False,
            soft_wrap=False,
            width=_width(self.env),
        )


def _width(env: Mapping[str, str]) -> int | None:
    try:
        return int(env["COLUMNS"])
    except (KeyError, ValueError):
        return None


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _ProgressBar:
    """A minimal stderr progress bar for long first scans (shown after 0.5 s, TTY only)."""

    def __init__(self, stream: IO[str], after: float = 0.5) -> None:
        import time

        self.after = after
        self.stream = stream
        self.start = time.monotonic()
        self.shown = False
        self._time = time.monotonic

    def update(self, done: int, total: int) -> None:
        if total <= 0 or self._time() - self.start < self.after:
            return
        width = 30
        frac = min(1.0, done / total)
        bar = "#" * int(frac * width)
        self.stream.write(
            f"\rtokmon: scanning transcripts [{bar:<{width}}] {frac * 100:5.1f}% "
            f"({done / 1e6:.0f}/{total / 1e6:.0f} MB)"
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


#: the log levels' numbers (logging's)
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def setup_logging(level: str, stream: IO[str], lazy: bool = False) -> None:
    """The log to ``stream`` at ``level``; ``lazy``: configured only once a record could
    pass (:mod:`tokmon.lazylog`: a report's modules log through it and import no
    ``logging`` unless they must). Other commands' modules and libraries log through
    ``logging`` itself: configured at once."""
    lazylog.configure(LEVELS.get(level, lazylog.WARNING), stream, now=not lazy)


def add_watcher_options(p: Any) -> None:
    """``--debounce-ms`` and ``--poll``: the file-watcher flags of ``serve`` and ``web``."""
    p.add_argument(
        "--debounce-ms",
        type=int,
        metavar="N",
        help="file watcher debounce in ms (default: config server.debounce_ms, 50)",
    )
    p.add_argument(
        "--poll",
        action="store_true",
        default=None,
        help="poll files instead of OS events (network/WSL filesystems; "
        "also TOKMON_FORCE_POLLING=1)",
    )


def watcher_settings(args: Any, ctx: Context) -> tuple[int, bool | None]:
    """(debounce ms, force polling or None) from the flags, else the config."""
    if args.debounce_ms is not None and not 1 <= args.debounce_ms <= 60_000:
        raise CLIError("--debounce-ms must be between 1 and 60000")
    cfg = ctx.config
    debounce = args.debounce_ms or int(cfg.get("server.debounce_ms") or 50)
    force_polling = True if args.poll or cfg.get("server.force_polling") else None
    return debounce, force_polling
