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

class CellSums:
    """The cells of a cold build's rows, summed as they come (ledger.Stage)."""

    def add(self, rows: list[list[Any]], /) -> tuple[bytes, bytes] | None: ...
    def finish(
        self, gone: list[tuple[Any, ...]], times: bytes | bytearray, /
    ) -> tuple[int, list[tuple[int, int, str, str, str]]] | None: ...
    def set_times(self, index: int, first: float, last: float, /) -> None: ...
    def args(self, agent: str, start: int, k: int, /) -> list[Any]: ...
    def rows(self) -> int: ...

def ts_order(
    times: bytes | bytearray | memoryview, gone: bytes | bytearray | memoryview, /
) -> tuple[bytes, list[tuple[int, int]]]: ...
def spans(
    order: bytes | bytearray | memoryview,
    times: bytes | bytearray | memoryview,
    block_seconds: float,
    aligned: bool,
    /,
) -> list[tuple[float, float, float | None, bool, int, float]]: ...
def dup_rows(hashes: bytes | bytearray | memoryview, /) -> tuple[set[int], list[int]]: ...
def rejects(data: bytes | bytearray | memoryview, /) -> bool: ...
def _fingerprint(buf: bytes | bytearray | memoryview, end: int, /) -> str: ...
def _trim() -> int: ...
def _prepass(line: bytes | bytearray | memoryview, /) -> bool: ...
def _prepass_lines() -> int: ...
def _usage_lines() -> int: ...
def _set_prepass(on: bool, /) -> None: ...
def _set_prepass_simd(build: int, /) -> int: ...
