"""Readers of coding agents' usage logs (one module per agent); see base.py for the interface."""

from __future__ import annotations

from collections.abc import Mapping

from tokmon.sources.amp import AmpSource
from tokmon.sources.base import AgentUsage, FileState, ReadResult, Source
from tokmon.sources.codex import CodexSource
from tokmon.sources.copilot import CopilotSource
from tokmon.sources.gemini import GeminiSource
from tokmon.sources.opencode import OpenCodeSource
from tokmon.sources.qwen import QwenSource

SOURCES: dict[str, type[Source]] = {
    s.agent: s
    for s in (CodexSource, GeminiSource, OpenCodeSource, QwenSource, CopilotSource, AmpSource)
}


def source_for(agent: str, env: Mapping[str, str] | None = None) -> Source:
    """The reader of one agent (raises KeyError for an unknown name)."""
    return SOURCES[agent](env)


__all__ = ["SOURCES", "AgentUsage", "FileState", "ReadResult", "Source", "source_for"]
