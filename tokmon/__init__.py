"""tokmon: see how fast you spend AI coding-assistant tokens."""

from __future__ import annotations

__version__ = "0.1.0"
