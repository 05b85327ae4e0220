"""Text that shows nothing. A question or answer made only of whitespace, invisible format characters (zero-width
space and joiners, word joiner, BOM, bidi marks, soft hyphen), control characters or the Hangul fillers (ㅤ U+3164 and
its half-width and Jamo forms) reads as empty to a reviewer and would train on an empty turn: it is never approved
and never exported. One definition for the Python checks and PostgreSQL's (a regular expression in the review's
single-statement path), so the two always agree."""

from __future__ import annotations

import re
import unicodedata

_HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
# Where such characters are: the first two planes and the tags of plane 14 (planes 2-13 hold none; a test checks this
# against every code point). Scanning only these keeps the import cheap in every process.
_PLANES = (range(1, 0x20000), range(0xE0000, 0xE1000))  # not NUL: PostgreSQL text never holds it


def _invisible(code_points) -> str:
    return "".join(
        ch for ch in map(chr, code_points) if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") or ch in _HANGUL_FILLERS
    )


INVISIBLE = "".join(_invisible(r) for r in _PLANES)
assert not set(INVISIBLE) & set("[]\\^-"), "a bracket expression's special characters"
# A character that shows: the same bracket expression in Python's and PostgreSQL's regular expressions.
VISIBLE_REGEX = f"[^{INVISIBLE}]"
_VISIBLE = re.compile(VISIBLE_REGEX)


def is_blank(text: str | None) -> bool:
    """True when the text shows nothing (empty, or only the characters above)."""
    return not text or _VISIBLE.search(text) is None
