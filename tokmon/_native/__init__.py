"""Optional native code (C extensions built at install time when a compiler is present).

``_scan``: the line scanner of :func:`tokmon.core.parser.scan_lines` on the vendored
yyjson (``vendor/yyjson``, MIT); without it the pure-Python scanner gives the same results.
"""
