"""Text hygiene for imported documents: decoding, normalisation, a PDF's pages read without their running headers,
footers and page numbers, and repair of hard-wrapped (PDF-extracted) lines."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter

from charset_normalizer import from_bytes

# C0/C1 control characters except tab and newline; form feeds from PDF page breaks become newlines first.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_BLANK_RUN = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


class DecodeError(ValueError):
    pass


def decode_bytes(raw: bytes) -> str:
    return decode_text(raw)[0]


def decode_text(raw: bytes) -> tuple[str, str]:
    """(text, the encoding it was read in). UTF-8 (with or without BOM) and UTF-16 with a BOM first; then a strict
    CP949 decode (the superset of EUC-KR that Korean Windows writes), taken when it succeeds and reads as Korean; only
    then charset-normalizer's statistical guess, which can misjudge short Korean files."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8 (BOM)"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp949")
    except UnicodeDecodeError:
        pass
    else:
        if _reads_as_korean(text):
            return text, "cp949"
    best = from_bytes(raw, cp_isolation=["cp949", "euc_kr", "utf_16", "utf_16_le", "utf_16_be", "johab", "latin_1"]).best()
    if best is None or best.encoding in {"latin_1", "ascii"} and _looks_binary(raw):
        raise DecodeError("the file is not text in a known encoding (UTF-8, UTF-16, CP949/EUC-KR, Johab, Latin-1)")
    # Prefer CP949, the superset Korean Windows writes, over EUC-KR: it decodes every EUC-KR file too.
    encoding = "cp949" if best.encoding in {"euc_kr", "cp949"} else best.encoding
    return raw.decode(encoding), encoding


def _reads_as_korean(text: str) -> bool:
    """Most characters beyond ASCII are Hangul syllables or jamo: a strict CP949 decode of something else (Latin-1 or
    Shift-JIS bytes that happen to pair up) gives mostly hanja and symbols instead."""
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return True
    hangul = sum(1 for c in wide if "\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e")
    return hangul >= 0.6 * len(wide)


def _looks_binary(raw: bytes) -> bool:
    sample = raw[:8192]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > len(sample) * 0.05


def looks_binary(raw: bytes) -> bool:
    """Binary content (images, executables, office files given a text name): NUL bytes or many control bytes."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return _looks_binary(raw)


def normalize_text(text: str, *, repair_wraps: bool = True) -> str:
    """NFC (macOS writes NFD, which breaks search, dedup and filters), LF line ends, no stray control characters,
    and lines that a fixed-width layout (PDF extraction) broke mid-sentence joined again."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n").replace("\ufeff", "")
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    if repair_wraps and is_hard_wrapped(text):
        text = repair_hard_wraps(text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_RUN.sub("\n\n", text)
    return text.strip()


# A line that ends a sentence or a heading-like unit; a wrapped line ends in the middle of one.
# Korean endings like 다/요 are not used: a wrapped line often ends in the middle of a word ("필요" / "한").
_TERMINAL = re.compile(r"[.!?。:;)\]」』”\"'’>\-─]\s*$")
# A line that starts a new unit: list markers, article numbers, circled numbers, rules of dashes, headers.
_STARTS_UNIT = re.compile(r"^\s*(?:[-─━=*•·∙ㆍ▶▷○●◎□■◇◆※]|\d+[.)]|[가-하][.)]|\(\d+\)|[①-⑳]|제\s*\d+\s*[조항호장절]|[IVX]+\.)")


_TABLE_CELLS = " | "  # how a table row's cells are joined (DOCX, HWP, PDF): a row is never joined to the next line


def wrap_width(text: str) -> int:
    lengths = sorted(len(line) for line in text.split("\n") if line.strip())
    return lengths[int(len(lengths) * 0.9)] if lengths else 0


def is_hard_wrapped(text: str) -> bool:
    """PDF extraction breaks lines at a fixed width, mid-sentence; ordinary text ends its lines at sentences."""
    width = wrap_width(text)
    if width == 0 or width > 120:
        return False
    lines = [line for line in text.split("\n") if line.strip()]
    long_lines = [line for line in lines if len(line) >= 0.7 * width]
    if len(long_lines) < 5:
        return False
    unfinished = sum(1 for line in long_lines if not _TERMINAL.search(line))
    return unfinished / len(long_lines) > 0.4


def repair_hard_wraps(text: str) -> str:
    """Join lines that a fixed-width layout broke mid-sentence (the break may be a blank line, as in PDF text).

    A line is joined to the next when it is nearly as long as the layout's width, does not end a sentence, and the
    next line does not start a new unit (a list item, an article, a rule). The text is otherwise unchanged, so words
    split at the break ("필요" / "한") come back whole; trailing spaces the extractor kept separate words.
    """
    width = wrap_width(text)
    segments = re.split(r"(\n+)", text)
    out: list[str] = []
    i = 0
    while i < len(segments):
        line = segments[i]
        out.append(line)
        if i + 2 < len(segments):
            nxt = segments[i + 2]
            if (
                len(line) >= 0.7 * width
                and not _TERMINAL.search(line)
                and nxt.strip()
                and not _STARTS_UNIT.match(nxt)
                and _TABLE_CELLS not in line
                and _TABLE_CELLS not in nxt
                and len(segments[i + 1]) <= 2
            ):
                # The extractor keeps a trailing space where the break fell between words.
                if line.endswith((" ", "\t")):
                    out[-1] = line.rstrip() + " "
                segments[i + 2] = nxt.lstrip()
                i += 2
                continue
            out.append(segments[i + 1])
        elif i + 1 < len(segments):
            out.append(segments[i + 1])
        i += 2
    return "".join(out)


# A page number alone on a line: "3", "- 3 -", "— 3 —", "3 / 12", "Page 3", "3쪽", "3 페이지".
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—―─]*(?:page\s*|p\.\s*)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*(?:쪽|페이지)?[\s\-–—―─]*$", re.IGNORECASE
)
_EDGE_LINES = 2  # running headers and footers are among the first or last lines of a page


def _edges(page: list[tuple[float, str]]) -> tuple[list[int], list[int]]:
    """The page's lines from the top down and from the bottom up, by height: a PDF may draw its header and footer
    before the body, so the order of the text says nothing of where a line is."""
    down = sorted(range(len(page)), key=lambda i: -page[i][0])
    return down, down[::-1]


def _without_furniture(page: list[tuple[float, str]], running: set[str]) -> list[str]:
    """The page less its running lines and one page number at the top and one at the bottom, taken from the edges
    inwards (a second number-only line at an edge is text: the end of a telephone number, a table's total)."""
    dropped: set[int] = set()
    for order in _edges(page):
        numbered = False
        for i in order:
            line = page[i][1]
            if _furniture_key(line) in running:
                dropped.add(i)
            elif not numbered and _PAGE_NUMBER.match(line):
                numbered = True
                dropped.add(i)
            else:
                break
    return [line for i, (_, line) in enumerate(page) if i not in dropped]


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()))


def reading_text(pages: list[list[tuple[float, str]]]) -> str:
    """A PDF's text as a reader sees it: page numbers and running headers and footers (the same line, numbers aside,
    at the top or bottom of at least half the pages, two at least) are left out, and the pages are joined by a single
    line break, so a sentence or a word that a page break split joins again when the hard wraps are repaired. A page
    is its lines in the order the page draws them, each with its height on the page."""
    pages = [[(y, line) for y, line in page if line.strip()] for page in pages]
    seen: Counter[str] = Counter()
    for page in pages:
        down, up = _edges(page)
        seen.update({_furniture_key(page[i][1]) for i in down[:_EDGE_LINES] + up[:_EDGE_LINES]})
    running = {
        key
        for key, count in seen.items()
        if len(pages) >= 2 and count >= max(2, len(pages) / 2) and not _PAGE_NUMBER.match(key.replace("#", "0"))
    }  # numbers alone: one page number per edge
    kept: list[str] = []
    for page in pages:
        kept.extend(_without_furniture(page, running))
    return "\n".join(kept)
