"""tokmon: see how fast you spend AI coding-assistant tokens."""

__version__ = "0.1.0"
