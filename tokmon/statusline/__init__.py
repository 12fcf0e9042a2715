"""``tokmon line``: a statusline for prompts, tmux and Claude Code.

The package is imported on every prompt, so its modules import only the
standard library at import time; the engine is loaded by the refresher.
"""
