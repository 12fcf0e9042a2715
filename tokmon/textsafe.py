"""One sanitizer for text that comes from outside tokmon and may reach a terminal.

Session titles, project paths, model names and session ids come from transcripts, Claude
Code's statusLine input or a restored backup: anyone who can put a line in a transcript (a
cloned repository's prompt, a pasted file) controls them.  Raw, such text could write the
clipboard (OSC 52), set the window title, hide text (``ESC [8m``) or reorder what is shown
(bidi overrides).  :func:`safe_text` is applied once, where the text enters tokmon (parser,
statusLine input, metadata writes and backup restore), so every surface prints clean text.

Removed: C0 controls (tab, newline and carriage return become a space), DEL, C1 controls
(U+0080 to U+009F), the bidi embeddings, overrides, isolates and marks (U+061C, U+200E,
U+200F, U+202A to U+202E, U+2066 to U+2069: "Trojan Source" reordering), and the invisible
format characters that make two names look alike or hide text between visible letters:
zero-width space, non-joiner and joiner (U+200B to U+200D), word joiner and the invisible
operators (U+2060 to U+2064), the deprecated format controls (U+206A to U+206F), the
byte-order mark / zero-width no-break space (U+FEFF), the soft hyphen (U+00AD), the
Mongolian vowel separator (U+180E) and the tag characters (U+E0000 to U+E007F, "ASCII
smuggling"). A price: an emoji joined by U+200D (a family) shows as its parts, and a
subdivision flag as a black flag. What is left is what a terminal shows. The JSON outputs
hold the same cleaned text (it is cleaned where it enters tokmon; docs/security.md).
Stdlib only and cheap: the statusline fast path uses it; every character removed is one
``str.isprintable`` rejects, so clean text takes the fast path.
"""

from __future__ import annotations

#: display limits for strings from transcripts (a line may hold 16 MiB): a session id as shown
#: (Claude's are 36-character UUIDs), a path (Linux's PATH_MAX), a project name (NAME_MAX)
ID_MAX = 200
PATH_MAX = 4096
NAME_MAX = 255

_SPACE = {0x09: " ", 0x0A: " ", 0x0D: " "}
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_INVISIBLE = (0x00AD, 0x180E, *range(0x200B, 0x200E), *range(0x2060, 0x2065),
              *range(0x206A, 0x2070), 0xFEFF, *range(0xE0000, 0xE0080))  # fmt: skip
_TABLE: dict[int, str | None] = {
    c: None for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), *_BIDI, *_INVISIBLE)
}
_TABLE.update(_SPACE)


def safe_text(value: str) -> str:
    """``value`` without control characters, bidi controls and invisible format characters
    (whitespace controls become a space).  Fast for the usual clean text."""
    if value.isprintable():
        return value
    return value.translate(_TABLE)


def safe_or_none(value: object, limit: int | None = None) -> str | None:
    """:func:`safe_text` of a string, whitespace collapsed and bounded; None when empty or
    not a string."""
    if not isinstance(value, str):
        return None
    text = " ".join(safe_text(value).split())
    if limit is not None:
        text = text[:limit]
    return text or None


def is_safe(value: str) -> bool:
    """True when :func:`safe_text` would leave ``value`` unchanged."""
    return safe_text(value) == value


def clip(value: str, limit: int) -> str:
    """``value`` cut to at most ``limit`` characters for display, the last one an ellipsis
    when it was cut (transcript ids and paths can be megabytes long).  Never for keys or
    ccusage-compatible JSON: those keep the string whole."""
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"
