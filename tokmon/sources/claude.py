"""Claude Code as a :class:`~tokmon.sources.base.Source`, on the engine's fast scanner.

The engine reads Claude transcripts through its parallel cold scan (:mod:`tokmon.core.scan`, rows
in :data:`tokmon.core.model.FIELDS` order, merged straight into the ledger): that path stays
the implementation. This class exposes the same reader through the source interface every
other agent implements (roots, files, incremental ``read``, dedup key and rule), so a tool
that handles sources generically (``SourceReader``, ``tokmon agents``) handles Claude too, and
what leaves it is the normalised :class:`AgentUsage` record with ``agent = "claude"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokmon.core.discovery import claude_roots, transcript_stats
from tokmon.core.model import UsageRecord
from tokmon.core.scan import scan_file
from tokmon.sources.base import AgentUsage, FileState, ReadResult, Source


def to_usage(r: UsageRecord) -> AgentUsage:
    """A Claude engine record in the source interface's normalised form."""
    return AgentUsage(
        agent=ClaudeSource.agent,
        ts=r.ts,
        session_id=r.session_id,
        project=r.project,
        model=r.model,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cache_read_tokens=r.cache_read_tokens,
        cache_write_tokens=r.cache_creation_tokens,
        reasoning_tokens=0,  # Claude Code does not report thinking tokens apart from output
        key=r.key,
        cost=r.display_cost,  # a legacy costUSD when the transcript has one, else priced
        origin=r.project,
    )


class ClaudeSource(Source):
    agent = "claude"
    label = "Claude Code"
    env_var = "CLAUDE_CONFIG_DIR"
    dedup_rule = (
        "key = message.id:requestId (a line without both is keyed by its file position); the "
        "same key on several lines or files keeps the line with the most output tokens "
        "(Claude Code re-writes a streamed response with growing usage)."
    )
    file_last_wins = False  # the scanner already kept the max-output line per key

    def roots(self) -> list[Path]:
        return [r for r in claude_roots(self.env) if r.is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(Path(key) for key, _ in transcript_stats(root))
        return sorted(out)

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        """New complete lines since ``state.offset`` (``head`` holds the scanner's fingerprint
        of the bytes before it: a rewritten file is read again from the start)."""
        st = state or FileState()
        res = scan_file(str(path), st.offset, None, fp=st.head)
        if res.error is not None:
            return ReadResult([], st)
        recs = [to_usage(UsageRecord.from_row(row)) for row in res.rows]
        new = FileState(offset=res.end, head=res.fp)
        return ReadResult(recs, new, replace=res.rewritten, bytes_read=res.end - res.start)

    def dedup(self, records: Iterable[AgentUsage]) -> list[AgentUsage]:
        best: dict[str, AgentUsage] = {}
        for r in records:
            cur = best.get(r.key)
            if cur is None or r.output_tokens > cur.output_tokens:
                best[r.key] = r
        return sorted(best.values(), key=lambda r: (r.ts, r.key))
