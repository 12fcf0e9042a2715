from collections.abc import Callable
from typing import Any

YYJSON_VERSION: str
ROW_OUTPUT: int
FP_WINDOW: int
FP_BYTES: int
MAX_DEPTH: int
PREPASS_BEST: int
MALLOC_TUNED: int  # 1: this module limited glibc's malloc to one arena; 0: it did not

def scan(
    buf: bytes | bytearray | memoryview,
    start: int,
    stop: int,
    base: int,
    source: str,
    best: dict[str, list[Any]],
    strings: dict[str, str],
    text: Callable[[str], str],
    fallback: Callable[[int, int], None],
    max_tokens: int,
    ts_min: float,
    ts_max: float,
    price: tuple[dict[str, Any], Callable[[str], Any], bool, int] | None = None,
    fp_end: int = -1,
    fd: int = -1,
    size: int = -1,
    path: str | None = None,
    title: Callable[[str, str, str], None] | None = None,
    /,
) -> Any: ...

class Parsed:
    """One file's pass 1 (parse_many), for finish()."""

def parse_many(
    buf: bytearray | memoryview, paths: list[str], sizes: list[int], max_tokens: int, /
) -> list[Parsed]: ...
def finish(
    parsed: Parsed,
    source: str,
    best: dict[str, list[Any]],
    strings: dict[str, str],
    text: Callable[[str], str],
    fallback: Callable[[bytes, int], None],
    title: Callable[[str, str, str], None],
    ts_min: float,
    ts_max: float,
    price: tuple[dict[str, Any], Callable[[str], Any], bool, int] | None = None,
    /,
) -> tuple[int, int, str] | None: ...
def batch_args(rows: list[Any], start: int, k: int, /) -> tuple[list[Any], bool] | None: ...
def cells(rows: list[list[Any]], /) -> tuple[list[tuple[Any, ...]], bytes] | None: ...
def dup_rows(hashes: bytes | bytearray | memoryview, /) -> tuple[set[int], list[int]]: ...
def rejects(data: bytes | bytearray | memoryview, /) -> bool: ...
def _fingerprint(buf: bytes | bytearray | memoryview, end: int, /) -> str: ...
def _trim() -> int: ...
def _prepass(line: bytes | bytearray | memoryview, /) -> bool: ...
def _prepass_lines() -> int: ...
def _usage_lines() -> int: ...
def _set_prepass(on: bool, /) -> None: ...
def _set_prepass_simd(build: int, /) -> int: ...
