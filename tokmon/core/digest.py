"""sha1 and blake2b hex digests without ``import hashlib`` on the warm-report path.

``hashlib`` loads OpenSSL's ``_hashlib`` (~2.5 ms), which a warm report otherwise never needs:
its ledger path is a sha1 of the roots and a changed file's fingerprint a blake2b. CPython's
built-in ``_sha1`` and ``_blake2`` give the same digests (``hashlib.blake2b`` *is*
``_blake2.blake2b``); an interpreter built without them falls back to ``hashlib``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

_sha1_new: Any
try:
    from _sha1 import sha1 as _sha1_new  # type: ignore[import-not-found,no-redef]
except ImportError:  # pragma: no cover - a build without the built-in hashes
    from hashlib import sha1 as _sha1_new
try:
    from _blake2 import blake2b as _blake2b_new
except ImportError:  # pragma: no cover
    from hashlib import blake2b as _blake2b_new


def ledger_stem(roots: Iterable[str | os.PathLike[str]]) -> str:
    """``ledger-<12 hex digits>``: the name (without suffix) of the ledger of a set of
    transcript roots and of its caches (:func:`tokmon.core.ledger.ledger_path`, the flat walk
    ``tokmon.__main__`` checks early); the same set in any order gives the same."""
    key = "\n".join(sorted(os.path.abspath(r) for r in roots))
    return "ledger-" + sha1_hex(key.encode())[:12]


def sha1_hex(data: bytes) -> str:
    """``hashlib.sha1(data).hexdigest()``."""
    return str(_sha1_new(data).hexdigest())


def blake2b(digest_size: int) -> _blake2b_new:
    """A new ``hashlib.blake2b(digest_size=digest_size)``."""
    return _blake2b_new(digest_size=digest_size)
