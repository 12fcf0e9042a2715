import os

from _typeshed import ReadableBuffer as Buffer

API_VERSION: int

def check(
    blob: Buffer, nd: int, dsig: Buffer, fsig: Buffer, threads: int = 1, /
) -> list[int] | None: ...
def paths_at(blob: Buffer, indexes: list[int], /) -> list[bytes]: ...

EARLY_VERSION: int

class _Checking: ...

def check_start(blob: Buffer, nd: int, dsig: Buffer, fsig: Buffer, /) -> _Checking: ...
def check_take(handle: _Checking, /) -> list[int] | None: ...

WALK_VERSION: int

class _Walk: ...

def walk_start(root: bytes, /) -> _Walk: ...
def walk_take(
    handle: _Walk, stat_result: type[os.stat_result], /
) -> (
    tuple[
        list[tuple[str, os.stat_result]],
        list[tuple[str, int, tuple[int, int, int, int], str, list[str]]],
    ]
    | None
): ...
