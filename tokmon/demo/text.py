"""Deterministic filler text for generated transcripts (prose, code, escapes, unicode)."""

from __future__ import annotations

import base64
import random

_WORDS = (
    "the a to of and in is that for it with as on this be we can use function value "
    "file path config return self import from def class const let var if else while "
    "for await async test assert error None True False null undefined string int list "
    "dict map filter reduce render component props state update query select where "
    "insert into table index schema migrate build deploy docker compose yaml json "
    "src/app/main.py lib/utils.ts tests/test_api.py README.md package.json Cargo.toml "
    "{ } ( ) [ ] => -> == != <= >= && || :: ; , . : = + - * / % "
    "\"quoted\" 'single' `code` \\path\\to\\win C:\\Users\\dev \\n \\t "
    "naïve café résumé Straße 中文 日本語 한국어 emoji 🚀 ✅ ⚠️ — … “smart” "
    "Let me check the implementation. I'll update the tests now. Running the build again. "
    "The error occurs because the variable is not defined before use. "
).split(" ")


class TextPool:
    """Slices of a pre-built pseudo-random text, cheap to draw at any size."""

    def __init__(self, rng: random.Random, size: int = 1_200_000) -> None:
        words = [w for w in _WORDS if w]
        picks = rng.choices(words, k=size // 5)
        parts: list[str] = []
        for i, w in enumerate(picks):
            parts.append(w)
            parts.append("\n" if i % 13 == 12 else ("\t" if i % 97 == 5 else " "))
        text = "".join(parts)
        while len(text) < size:
            text += text
        self.text = text[:size]
        self.b64 = base64.b64encode(rng.randbytes(size * 3 // 4)).decode("ascii")
        self.rng = rng

    def text_of(self, n: int) -> str:
        """About ``n`` characters of text."""
        n = max(1, int(n))
        size = len(self.text)
        if n >= size:
            return (self.text * (n // size + 1))[:n]
        off = self.rng.randrange(size - n)
        return self.text[off : off + n]

    def b64_of(self, n: int) -> str:
        """``n`` base64 characters (signatures, image data)."""
        n = max(4, int(n) // 4 * 4)
        size = len(self.b64)
        if n >= size:
            return (self.b64 * (n // size + 1))[:n]
        off = self.rng.randrange((size - n) // 4) * 4
        return self.b64[off : off + n]
