"""Optional native code (C extensions built at install time when a compiler is present).

``_scan``: the line scanner of :func:`tokmon.core.parser.scan_lines` on the vendored
yyjson (``vendor/yyjson``, MIT); without it the pure-Python scanner gives the same results.
``_stat`` (POSIX only): the ``stat`` calls of the warm change check's flat walk
(:meth:`tokmon.core.engine.check.Flat.check`) with the GIL released, and a first scan's walk
begun early (:func:`tokmon.core.discovery.start_walks`); without it ``os.stat`` and Python's
walk give the same answers.
"""

import os


def disabled() -> bool:
    """Whether ``TOKMON_NO_NATIVE`` asks for the pure-Python paths (any value but "" and
    "0")."""
    return os.environ.get("TOKMON_NO_NATIVE", "") not in ("", "0")
