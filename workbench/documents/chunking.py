"""Korean-aware chunking: paragraphs kept whole where they fit, long ones cut at sentence boundaries (Kiwi).

Chunks are spans of the stored document text, so `text[start:end]` is always the chunk, and chunking is a pure
function of the text and the settings (deterministic).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ALGORITHM_VERSION = 1
_PARAGRAPH = re.compile(r"\S(?:.|\n(?![ \t]*\n))*", re.DOTALL)
# Longer than any Korean or English word: a URL, a hash, or text written without spaces.
_LONG_RUN = re.compile(r"\S{200,}")
# Kiwi's sentence splitting grows faster than the text it is given (one line of 160,000 characters: 4 s and 540 MB; a
# 28 MB one-line file: over 300 s and 4.4 GB), so a longer line is handed to it a window at a time.
SENTENCE_WINDOW = 10_000
_SPACE = re.compile(r"\s")
_SENTENCE_END = re.compile(r"[.!?\u3002\u2026][\"'\u201d\u2019)\]]*\s")


class ChunkSettingsError(ValueError):
    """Chunking settings that cannot be used (sizes out of order, a tokenizer missing or not loadable); the message
    is meant for the user."""


@dataclass(frozen=True)
class ChunkSettings:
    unit: str = "chars"  # "chars" or "tokens"
    target: int = 900
    maximum: int = 1400
    overlap: int = 0
    tokenizer: str = ""

    def __post_init__(self):
        if not 0 < self.target <= self.maximum:
            raise ChunkSettingsError("chunk target size must be positive and at most the maximum size")
        if not 0 <= self.overlap < self.target:
            raise ChunkSettingsError("chunk overlap must be below the target size")
        if self.unit == "tokens" and not self.tokenizer:
            raise ChunkSettingsError("token-measured chunks need a tokenizer")

    @property
    def key(self) -> str:
        payload = json.dumps({**self.__dict__, "v": ALGORITHM_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    @property
    def min_size(self) -> int:
        """Chunks below this are slivers and are merged into their neighbour where the maximum allows."""
        return max(1, self.target // 4)


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    size: int


class KiwiSentenceSplitter:
    """Sentence boundaries from Kiwi (kiwipiepy). Loaded once per process, on first use."""

    _lock = threading.Lock()
    _kiwi = None

    @classmethod
    def _get(cls):
        with cls._lock:
            if cls._kiwi is None:
                from kiwipiepy import Kiwi

                cls._kiwi = Kiwi(num_workers=-1)
            return cls._kiwi

    def boundaries(self, text: str) -> list[int]:
        """Offsets in `text` where a new sentence starts (excluding 0)."""
        return [s.start for s in self._get().split_into_sents(text)[1:]]


@lru_cache(maxsize=8)
def _load_tokenizer(name: str):
    from tokenizers import Tokenizer

    if name.endswith(".json"):
        return Tokenizer.from_file(name)
    if Path(name).is_dir():  # a local model directory, as the project's Base model field takes one
        return Tokenizer.from_file(str(Path(name) / "tokenizer.json"))
    return Tokenizer.from_pretrained(name)


def measure_for(settings: ChunkSettings) -> Callable[[str], int]:
    if settings.unit == "chars":
        return len
    try:
        tokenizer = _load_tokenizer(settings.tokenizer)
    except Exception as exc:  # a missing file, a damaged one, a hub id that cannot be reached
        raise ChunkSettingsError(
            f"the tokenizer {settings.tokenizer!r} could not be loaded ({type(exc).__name__}: {exc})"[:600]
        ) from exc
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _longest_fit(text: str, start: int, end: int, maximum: int, measure) -> int:
    """The end of the longest prefix of text[start:end] that measures at most `maximum`, found without measuring
    more than about twice that prefix (so cutting a long span is linear in its length)."""
    if measure is len:
        return min(end, start + maximum)
    window = max(1, maximum)
    while start + window < end and measure(text[start : start + window]) <= maximum:
        window *= 2
    hi = min(end, start + window)
    if measure(text[start:hi]) <= maximum:
        return hi
    lo, hi = start + 1, hi - 1  # binary search works for characters and tokens alike
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[start:mid]) <= maximum:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _hard_split(text: str, start: int, end: int, maximum: int, measure) -> list[tuple[int, int]]:
    """Cut a span with no usable sentence boundary into pieces of at most `maximum`, preferring whitespace."""
    pieces = []
    start, end = _trim(text, start, end)
    while start < end:
        cut = _longest_fit(text, start, end, maximum, measure)
        if cut >= end:
            pieces.append((start, end))
            break
        space = text.rfind(" ", start, cut)
        if space > start + (cut - start) * 0.8:
            cut = space
        piece = _trim(text, start, cut)
        if piece[0] < piece[1]:
            pieces.append(piece)
        start, end = _trim(text, cut, end)
    return pieces


def _window_end(text: str, start: int, end: int) -> int:
    """Where a sentence-splitting window from `start` ends: in the second half of SENTENCE_WINDOW characters, after the
    last sentence punctuation followed by whitespace, else at the last whitespace, else at the window's length."""
    half, limit = start + SENTENCE_WINDOW // 2, min(end, start + SENTENCE_WINDOW)
    cuts = [m.end() - 1 for m in _SENTENCE_END.finditer(text, half, limit)] or [
        m.start() for m in _SPACE.finditer(text, half, limit)
    ]
    return cuts[-1] if cuts else limit


def _units(text: str, settings: ChunkSettings, measure, splitter) -> list[ChunkSpan]:
    """Paragraphs; within a paragraph longer than the maximum its lines; within a longer line its sentences (Kiwi);
    within a longer sentence, pieces cut at whitespace. The sentence splitter runs only where it is needed."""
    units: list[ChunkSpan] = []

    def sentences(start: int, end: int) -> None:
        start, end = _trim(text, start, end)
        # `start` is where the sentence being read began; `at` where the next window begins. Each window moves on by at
        # least half its length, so the work stays linear in the line.
        at = start
        while at < end:
            stop = end if end - at <= SENTENCE_WINDOW else _window_end(text, at, end)
            cuts = [start] + [at + b for b in splitter.boundaries(text[at:stop])]
            if stop == end:
                cuts.append(end)
            elif cuts[-1] > at + SENTENCE_WINDOW // 2:
                stop = cuts[-1]  # the window's last sentence may go on past it: the next window starts with it
            else:
                stop = _trim(text, stop, end)[0]  # a sentence longer than half a window goes on into the next one
            for s, e in zip(cuts, cuts[1:]):
                add(s, e, 2)
            start, at = cuts[-1], stop

    def add(start: int, end: int, level: int) -> None:
        start, end = _trim(text, start, end)
        if start >= end:
            return
        size = measure(text[start:end])
        if size <= settings.maximum:
            units.append(ChunkSpan(start, end, size))
        elif level == 0:
            line_starts = [start] + [start + m.end() for m in re.finditer(r"\n", text[start:end])] + [end]
            for s, e in zip(line_starts, line_starts[1:]):
                add(s, e, 1)
        elif level == 1:
            # A long run without whitespace is no prose for Kiwi to find sentences in, and Kiwi spends about 60 us a
            # character on it (two minutes for 2,000,000 characters): such a run is cut at the maximum on its own.
            at = start
            for run in _LONG_RUN.finditer(text, start, end):
                sentences(at, run.start())
                add(run.start(), run.end(), 2)
                at = run.end()
            sentences(at, end)
        else:
            units.extend(ChunkSpan(a, b, measure(text[a:b])) for a, b in _hard_split(text, start, end, settings.maximum, measure))

    for match in _PARAGRAPH.finditer(text):
        add(match.start(), match.end(), 0)
    return units


def chunk_text(text: str, settings: ChunkSettings, *, splitter=None, measure=None) -> list[ChunkSpan]:
    measure = measure or measure_for(settings)
    splitter = splitter or KiwiSentenceSplitter()
    units = _units(text, settings, measure, splitter)
    chunks: list[ChunkSpan] = []
    i = 0
    while i < len(units):
        # Start a chunk at unit i, then add units while the chunk stays within the target.
        j = i
        size = units[i].size
        while j + 1 < len(units):
            candidate = measure(text[units[i].start : units[j + 1].end])
            if candidate > settings.target:
                break
            j, size = j + 1, candidate
        chunks.append(ChunkSpan(units[i].start, units[j].end, size))
        if j + 1 >= len(units):
            break
        # Overlap: the next chunk repeats the trailing units of this one that fit in the overlap budget, if the
        # next new unit still fits beside them (otherwise the chunk would not advance).
        k = j + 1
        while settings.overlap and k - 1 > i and measure(text[units[k - 1].start : units[j].end]) <= settings.overlap:
            k -= 1
        if k <= j and measure(text[units[k].start : units[j + 1].end]) > settings.target:
            k = j + 1
        i = k
    # Merge a sliver tail into the chunk before it where the maximum allows.
    if len(chunks) > 1 and chunks[-1].size < settings.min_size:
        merged_size = measure(text[chunks[-2].start : chunks[-1].end])
        if merged_size <= settings.maximum:
            chunks[-2:] = [ChunkSpan(chunks[-2].start, chunks[-1].end, merged_size)]
    return chunks
