"""Optional native code (C extensions built at install time when a compiler is present).

``_scan``: the line scanner of :func:`tokmon.core.parser.scan_lines` on the vendored
yyjson (``vendor/yyjson``, MIT); without it the pure-Python scanner gives the same results.
``_stat`` (POSIX only): the ``stat`` calls of the warm change check's flat walk
(:meth:`tokmon.core.engine.check.Flat.check`) with the GIL released; without it ``os.stat``
gives the same answers.
"""
