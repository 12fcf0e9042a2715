from _typeshed import ReadableBuffer as Buffer

API_VERSION: int

def check(
    blob: Buffer, nd: int, dsig: Buffer, fsig: Buffer, threads: int = 1, /
) -> list[int] | None: ...
