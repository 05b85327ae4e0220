"""The automatic filters: pure functions over (source, raw output, finish reason), no database, so the offline
`check_outputs` command, the pipeline and the re-scoring task share them.

Each flag has a score in [0, 1], a severity and a reason a reviewer can read; echo flags carry the copied spans of the
source so the review page can highlight them. Thresholds are project settings (`Project.filter_thresholds`) over
DEFAULTS; the defaults are justified by the evaluation set (`benchmarks/quality_eval.py`, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations

from workbench.generation.parsing import parse_output
from workbench.quality.korean import MAX_TERMS, MIN_TERMS, answer_facts, question_terms, term_similarity
from workbench.quality.models import FlagName, Severity
from workbench.quality.synonyms import CANONICAL

FLAG_NAMES = tuple(FlagName.values)

DEFAULTS: dict[str, float] = {
    # Verbatim copying is measured in runs of at least this many characters shared with the source.
    "echo.min_span": 20,
    # A question that copies this many characters of the source is an echo, however it ends ...
    "echo.question_copied_chars": 120,
    # ... and one that copies this share of itself (from 40 characters on) and does not ask anything.
    "echo.question_copied_share": 0.7,
    # An answer is a copy when one verbatim run is this long, or when this share of a long answer is copied.
    "echo.answer_longest_span": 180,
    "echo.answer_copied_share": 0.9,
    "echo.answer_copied_min_chars": 200,
    # An answer that merely repeats the question (share of the answer's character trigrams found in the question).
    "echo.answer_repeats_question": 0.8,
    # Without a finish reason, answers shorter than this are facts ("182석"), not cut sentences.
    "truncated.min_chars": 15,
    # Korean must be at least this share of the letters of a question or answer when the source is Korean.
    "language.min_hangul_share": 0.3,
    "language.source_hangul_share": 0.5,
    # A phrase repeated back to back this many times, or this low a share of distinct word trigrams, is a loop.
    "repetition.min_repeats": 4,
    # A clause (this many characters or more) said three times in a row is a loop too: prose repeats a word for
    # emphasis ("도시를 도시를 도시를"), never a whole clause.
    "repetition.min_clause_repeats": 3,
    "repetition.min_clause_chars": 10,
    "repetition.min_distinct_trigram_share": 0.4,
    # Near-duplicate questions: Jaccard similarity of character trigrams (without case, spaces, punctuation). The
    # model's questions share templates ("…에 대해 설명해 주세요"), so two questions about different subjects reach
    # 0.7-0.8; 0.9 keeps precision at 0.92 on the evaluation set (0.43 at 0.7) for the same recall.
    "duplicate.similarity": 0.9,
    # Paraphrased duplicates: Jaccard similarity of the questions' content morphemes (Kiwi; frame words such as
    # "설명", "무엇" dropped, synonyms mapped to one form). Two questions about different subjects in one frame share
    # few terms ("대통령의 임기" / "국회의원의 임기": 0.6); a paraphrase keeps them (docs/PERFORMANCE.md).
    "duplicate.term_similarity": 0.7,
    # With an embedding model set on the project: cosine of the questions' sentence embeddings (GPU workers). Measured
    # with multilingual-e5-small: 0.80 (ko-genstruct's own cut) flags most questions of a one-domain project; 0.96 kept
    # precision 0.91 on the held-out set and 0.56 on the dev set (docs/PERFORMANCE.md). Set it for the model in use.
    "duplicate.embedding_similarity": 0.96,
    # Facts of the answer missing from the source: any number, date, Latin-script name or proper noun ...
    "unsupported.max_missing_facts": 0,
    # ... or this many of its common nouns (not used by the question either) and this share of them.
    "unsupported.min_missing_nouns": 3,
    "unsupported.missing_noun_share": 0.5,
}

# Each flag's severity unless the project overrides it.
SEVERITIES: dict[str, str] = {
    FlagName.MALFORMED: Severity.REJECT,
    FlagName.TRUNCATED: Severity.REJECT,
    FlagName.ECHO: Severity.REJECT,
    FlagName.DUPLICATE: Severity.WARNING,
    FlagName.LANGUAGE: Severity.REJECT,
    FlagName.REPETITION: Severity.REJECT,
    FlagName.UNSUPPORTED: Severity.WARNING,
}


@dataclass(frozen=True)
class FilterConfig:
    thresholds: dict = field(default_factory=lambda: dict(DEFAULTS))
    severities: dict = field(default_factory=lambda: dict(SEVERITIES))

    @classmethod
    def from_overrides(cls, overrides: dict | None) -> FilterConfig:
        thresholds, severities = dict(DEFAULTS), dict(SEVERITIES)
        for key, value in (overrides or {}).items():
            if key.startswith("severity."):
                severities[key.split(".", 1)[1]] = Severity.REJECT if value else Severity.WARNING
            elif key in thresholds:
                thresholds[key] = value
        return cls(thresholds, severities)

    def __getitem__(self, key: str) -> float:
        return self.thresholds[key]


@dataclass
class Flag:
    name: str
    score: float
    reason: str
    severity: str = Severity.WARNING
    details: dict = field(default_factory=dict)


@dataclass
class Assessment:
    question: str | None
    answer: str | None
    flags: list[Flag]
    scores: dict[str, float]

    @property
    def flag_names(self) -> list[str]:
        return sorted(f.name for f in self.flags)


# --- verbatim copying ------------------------------------------------------------------------------------------------
_KGRAM = 12
_source_cache: OrderedDict[str, dict[str, int]] = OrderedDict()


def _source_index(source: str) -> dict[str, int]:
    """First position of every 12-character substring of the source (cached: a chunk has several samples)."""
    index = _source_cache.get(source)
    if index is None:
        index = {}
        for i in range(len(source) - _KGRAM + 1):
            index.setdefault(source[i : i + _KGRAM], i)
        _source_cache[source] = index
        if len(_source_cache) > 256:
            _source_cache.popitem(last=False)
    else:
        _source_cache.move_to_end(source)
    return index


def copied_spans(text: str, source: str, *, min_span: int) -> list[tuple[int, int, int]]:
    """Maximal runs of `text` that occur verbatim in `source`: (start in text, end in text, start in source).

    The text is scanned from the left: a run starts where 12 characters of it occur in the source and extends from
    their first occurrence there as far as both agree; a run shorter than `min_span` is dropped and the scan goes on
    from the next position. A run of `min_span` characters holds the 12 characters at some multiple of `step` =
    `min_span` - 11, so those positions are looked up first, and the scan visits only the `step` positions up to each
    one found in the source: no other position starts a run that is kept (the tests compare this with a scan of every
    position)."""
    n = len(text)
    if n < _KGRAM or len(source) < _KGRAM:
        return []
    index = _source_index(source)
    step = max(1, min_span - _KGRAM + 1)
    spans = []
    i = 0
    for probe in range(0, n - _KGRAM + 1, step):
        if probe < i or text[probe : probe + _KGRAM] not in index:
            continue
        i = max(i, probe - step + 1)
        while i <= probe:
            pos = index.get(text[i : i + _KGRAM])
            if pos is None:
                i += 1
                continue
            end = i + _KGRAM + _common_prefix(text, i + _KGRAM, source, pos + _KGRAM)
            if end - i >= min_span:
                spans.append((i, end, pos))
                i = end
            else:
                i += 1
    return spans


def _common_prefix(a: str, i: int, b: str, j: int) -> int:
    """The length of the common prefix of a[i:] and b[j:], by halving on slice comparisons."""
    low, high = 0, min(len(a) - i, len(b) - j)
    while low < high:
        mid = (low + high + 1) // 2
        if a[i + low : i + mid] == b[j + low : j + mid]:
            low = mid
        else:
            high = mid - 1
    return low


_INTERROGATIVE = re.compile(
    r"(\?|？|까요?|나요|가요|습니까|인가|는가|세요|십시오|주십시오|해 ?주세요|주실 수|알려 ?줘|설명해|시오|하라|무엇|어떤|어떻게|왜|언제|어디|누구|얼마)"
)


def _looks_like_question(question: str) -> bool:
    return bool(_INTERROGATIVE.search(question[-40:]))


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def _repeated_share(answer: str, question: str, threshold: float) -> float:
    """The share of the answer's character trigrams (runs of spaces as one space) that the question has too, or 0 when a
    cheap bound puts it below `threshold`: each character of the answer that the question lacks, from the answer's
    third on, ends at least one trigram that the question lacks, among at most len(answer) - 2 trigrams."""
    answer, question = " ".join(answer.split()), " ".join(question.split())
    if len(answer) >= 3:
        lacking = len(set(answer[2:]).difference(question))
        if (len(answer) - 2 - lacking) / (len(answer) - 2) < threshold:
            return 0.0
    a_grams = _trigrams(answer)
    return len(a_grams & _trigrams(question)) / len(a_grams) if a_grams else 0.0


# --- individual filters ------------------------------------------------------------------------------------------------
def _echo(source: str, question: str | None, answer: str | None, cfg: FilterConfig) -> Flag | None:
    min_span = int(cfg["echo.min_span"])
    reasons, score, spans = [], 0.0, []
    if question:
        q_spans = copied_spans(question, source, min_span=min_span)
        copied = sum(e - s for s, e, _ in q_spans)
        share = copied / len(question)
        if copied >= cfg["echo.question_copied_chars"] or (
            len(question) >= 40 and share >= cfg["echo.question_copied_share"] and not _looks_like_question(question)
        ):
            reasons.append(f"the question copies {copied} characters of the source ({share:.0%} of it) instead of asking")
            score = max(score, min(1.0, max(share, copied / cfg["echo.question_copied_chars"] / 1.5)))
            spans += [
                {"field": "question", "start": s, "end": e, "source_start": p, "source_end": p + (e - s)} for s, e, p in q_spans
            ]
    if answer:
        a_spans = copied_spans(answer, source, min_span=min_span)
        copied = sum(e - s for s, e, _ in a_spans)
        longest = max((e - s for s, e, _ in a_spans), default=0)
        share = copied / len(answer)
        if longest >= cfg["echo.answer_longest_span"] or (
            copied >= cfg["echo.answer_copied_min_chars"] and share >= cfg["echo.answer_copied_share"]
        ):
            reasons.append(f"the answer copies the source verbatim ({copied} characters, {share:.0%}; longest run {longest})")
            score = max(score, min(1.0, max(share, longest / cfg["echo.answer_longest_span"] / 1.5)))
            spans += [
                {"field": "answer", "start": s, "end": e, "source_start": p, "source_end": p + (e - s)} for s, e, p in a_spans
            ]
        if question and len(answer) >= 10:
            overlap = _repeated_share(answer, question, cfg["echo.answer_repeats_question"])
            if overlap >= cfg["echo.answer_repeats_question"]:
                reasons.append(f"the answer repeats the question ({overlap:.0%} of it)")
                score = max(score, overlap)
    if not reasons:
        return None
    return Flag("echo", round(score, 3), "; ".join(reasons).capitalize() + ".", details={"spans": spans})


_TERMINAL_PUNCT = ".!?。…~)]」』”’\"'》〉>*`"
_KOREAN_END = re.compile(r"(다|요|죠|까|음|함|임|됨|니다|세요|시오|라|네|군|자|지|오)$")
_PAIRS = [("(", ")"), ("[", "]"), ("「", "」"), ("『", "』"), ("《", "》"), ("“", "”"), ("‘", "’")]


def _unbalanced(text: str) -> str | None:
    for opening, closing in _PAIRS:
        if text.count(opening) > text.count(closing):
            return f"an unclosed {opening}"
    if text.count('"') % 2:
        return 'an unclosed "'
    return None


def _truncated(question: str | None, answer: str | None, finish_reason: str | None, cfg: FilterConfig) -> Flag | None:
    if finish_reason == "length":
        return Flag("truncated", 1.0, "The generation hit the token limit before its end-of-turn token.")
    if finish_reason == "stop":
        return None
    tail = (answer if answer is not None else question) or ""
    tail = tail.rstrip()
    if len(tail) < cfg["truncated.min_chars"]:
        return None
    if problem := _unbalanced(tail):
        return Flag("truncated", 0.9, f"The text stops with {problem} (finish reason unknown).")
    last = tail[-1]
    if last in _TERMINAL_PUNCT or last.isdigit() and tail.endswith(("년", "%")):
        return None
    last_word = tail.split()[-1] if tail.split() else tail
    if _KOREAN_END.search(last_word):
        return None
    return Flag("truncated", 0.8, f"The text stops mid-sentence at “…{tail[-20:]}” (finish reason unknown).")


_NON_LETTER = re.compile(r"[\W\d_]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+")


def _hangul_count(text: str) -> int:
    return len(text) - len(_HANGUL.sub("", text))


def _hangul_share(text: str) -> tuple[float, int]:
    letters = len(_NON_LETTER.sub("", text))
    return (_hangul_count(text) / letters if letters else 1.0), letters


@lru_cache(maxsize=512)
def _source_hangul_share(source: str) -> tuple[float, int]:
    return _hangul_share(source)


def _language(source: str, question: str | None, answer: str | None, cfg: FilterConfig) -> Flag | None:
    source_share, source_letters = _source_hangul_share(source)
    if source_letters < 20 or source_share < cfg["language.source_hangul_share"]:
        return None
    worst, which = 1.0, []
    for name, text in (("question", question), ("answer", answer)):
        if not text:
            continue
        # There are no more letters than characters: a text with this much Hangul among its characters has as much among
        # its letters, and its letters need no counting.
        if _hangul_count(text) / len(text) >= cfg["language.min_hangul_share"]:
            continue
        share, letters = _hangul_share(text)
        if letters >= 8 and share < cfg["language.min_hangul_share"]:
            which.append(f"the {name} is {share:.0%} Korean")
            worst = min(worst, share)
    if not which:
        return None
    return Flag("language", round(1 - worst, 3), "The source is Korean but " + " and ".join(which) + ".")


_LOOP = re.compile(r"(.{2,40}?)(?:\s*\1){3,}", re.DOTALL)


def _loops(text: str):
    """The matches of `_LOOP.finditer(text)`, found faster by trying the regex only where a match can start (the same
    leftmost, non-overlapping matches; the full search costs ~1 ms on a long echoed question). A match's unit, of two to
    40 characters, is followed by three copies, each after nothing but spaces; so the character pair that starts it
    occurs again within 40 characters, or further on with nothing but spaces from the 40th character to it, and three
    times without overlap from there."""
    match, find, count, i, end = _LOOP.match, text.find, text.count, 0, len(text) - 1
    while i < end:
        pair = text[i : i + 2]
        again = find(pair, i + 2)
        if (
            again != -1
            and (again - i <= 40 or text[i + 40 : again].isspace())
            and count(pair, again) >= 3
            and (found := match(text, i))
        ):
            yield found
            i = found.end()
        else:
            i += 1


def _may_loop(text: str, words: list[str], min_repeats: int, min_clause_repeats: int) -> tuple[bool, bool]:
    """Whether the searches for loops, and for clauses said again and again, are worth running (each costs about as
    much as all the other filters together): a long loop compresses far better than prose, and a short one in a long
    answer repeats a word at a steady step (every word, or every second one, ...) `min_repeats` times; a clause of
    several words repeats each of them at a steady step of two or more words `min_clause_repeats` times (prose that
    compresses well, an echo of a long passage, does not, so compressing says nothing of clauses)."""
    encoded = text.encode("utf-8")
    loop = len(encoded) >= 24 and len(zlib.compress(encoded)) < 0.6 * len(encoded)
    clause = False
    # Words said again: a word looping says itself min_repeats - 1 times more, a clause of two words or more twice as
    # often as it repeats. Counted at C speed before anything is counted per word.
    again = len(words) - len(set(words))
    clauses = min_clause_repeats < min_repeats and again >= 2 * (min_clause_repeats - 1)
    if not clauses and (loop or again < min_repeats - 1):
        return loop, False
    fewest = min_clause_repeats if loop else min(min_repeats, min_clause_repeats)
    frequent = [word for word, n in Counter(words).items() if n >= fewest]
    for word in frequent:
        at = [i for i, w in enumerate(words) if w == word]
        run, last_step = 1, 0  # occurrences in a row at one step
        for before, here in zip(at, at[1:]):
            step = here - before
            run = 1 if step > 40 or step > 8 and step != last_step else run + 1 if step == last_step else 2
            last_step = step
            loop = loop or run >= min_repeats and step <= 8
            clause = clause or run >= min_clause_repeats and step >= 2
        if loop and clause:
            break
    return loop, clause


@lru_cache(maxsize=16)
def _clause_loop(chars: int, repeats: int) -> re.Pattern:
    return re.compile(rf"(.{{{chars},200}}?)(?:\s*\1){{{repeats - 1},}}", re.DOTALL)


def _clause_loops(text: str, chars: int, repeats: int):
    """The matches of `_clause_loop(chars, repeats).finditer(text)`, the regex tried only where a match can start: its
    first `chars` characters occur again within the next 220 (a unit of up to 200 and the spaces after it)."""
    match, find, i, end = _clause_loop(chars, repeats).match, text.find, 0, len(text) - chars * repeats
    while i <= end:
        if find(text[i : i + chars], i + chars, i + 220 + chars) != -1 and (found := match(text, i)):
            yield found
            i = max(found.end(), i + 1)
        else:
            i += 1


def _repetition(question: str | None, answer: str | None, raw: str, cfg: FilterConfig) -> Flag | None:
    text = " ".join(t for t in (question, answer) if t) or raw
    min_repeats = int(cfg["repetition.min_repeats"])
    # A clause is said at least twice and holds at least two characters, whatever the project set (0 would make the
    # search match nothing at every position).
    min_clause_repeats = max(2, int(cfg["repetition.min_clause_repeats"]))
    best = None
    words = text.split()
    may_loop, may_repeat_clause = _may_loop(text, words, min_repeats, min_clause_repeats)
    for match in _loops(text) if may_loop else ():
        unit = match.group(1)
        if not any(ch.isalpha() for ch in unit):
            continue  # rules of dashes, dotted leaders and numbers in tables are layout, not a loop
        repeats = len(re.findall(re.escape(unit), match.group(0)))
        if repeats >= min_repeats and (best is None or len(match.group(0)) > len(best[0])):
            best = (match.group(0), unit, repeats)
    if best is None and may_repeat_clause and min_clause_repeats < min_repeats:
        for match in _clause_loops(text, max(2, int(cfg["repetition.min_clause_chars"])), min_clause_repeats):
            unit = match.group(1)
            if len(unit.split()) < 2 or sum(ch.isalpha() for ch in unit) < 0.5 * len(unit.strip()):
                continue  # one word (the loop search's business), or layout
            repeats = len(re.findall(re.escape(unit), match.group(0)))
            if best is None or len(match.group(0)) > len(best[0]):
                best = (match.group(0), unit, repeats)
    if best:
        return Flag(
            "repetition", min(1.0, best[2] / (2 * min_repeats)), f"“{best[1].strip()}” is repeated {best[2]} times in a row."
        )
    if len(words) >= 24:
        distinct = len(set(zip(words, words[1:], words[2:]))) / (len(words) - 2)
        if distinct < cfg["repetition.min_distinct_trigram_share"]:
            return Flag(
                "repetition", round(1 - distinct, 3), f"Only {distinct:.0%} of its word sequences are distinct: it loops."
            )
    return None


def _unsupported(source: str, question: str | None, answer: str | None, cfg: FilterConfig) -> Flag | None:
    if not answer:
        return None
    facts = answer_facts(answer, source, question or "")
    strict_missing = [m for m in facts["missing"] if m["kind"] != "noun"]
    nouns_missing = facts["nouns_missing"]
    noun_share = nouns_missing / facts["nouns"] if facts["nouns"] else 0.0
    too_many_facts = len(strict_missing) > cfg["unsupported.max_missing_facts"]
    too_many_nouns = nouns_missing >= cfg["unsupported.min_missing_nouns"] and noun_share >= cfg["unsupported.missing_noun_share"]
    if not (too_many_facts or too_many_nouns):
        return None
    shown = strict_missing if too_many_facts and not too_many_nouns else facts["missing"]
    score = max(
        0.5 + 0.5 * len(strict_missing) / facts["strict"] if strict_missing else 0.0, noun_share if too_many_nouns else 0.0
    )
    parts = []
    for kinds, lead in (
        (("number", "name", "noun", "substituted"), "Not found in the source"),
        (("misplaced",), "Not in the source's sentence it restates"),
        (("swapped",), "In another's role in the sentence it restates"),
    ):
        # each fact named once, however often the answer says it
        distinct = list(dict.fromkeys(m["text"] for m in shown if m["kind"] in kinds))
        if distinct:
            more = f" and {len(distinct) - 8} more" if len(distinct) > 8 else ""
            parts.append(f"{lead}: " + ", ".join(f"“{text}”" for text in distinct[:8]) + more + ".")
    return Flag("unsupported", round(min(1.0, score), 3), " ".join(parts), details={"missing": shown})


_DEFAULT_CONFIG = FilterConfig()


def assess(source: str, raw: str, *, finish_reason: str | None = None, cfg: FilterConfig | None = None) -> Assessment:
    """Every per-pair filter (all but `duplicate`, which needs the other questions)."""
    cfg = cfg or _DEFAULT_CONFIG
    source = unicodedata.normalize("NFC", source)
    parsed = parse_output(unicodedata.normalize("NFC", raw))
    flags: list[Flag] = []
    if not parsed.ok:
        flags.append(Flag("malformed", 1.0, f"Not a [[Q]] … [[A]] … pair: {parsed.problem}."))
    elif "\ufffd" in parsed.question or "\ufffd" in parsed.answer:
        # Bytes that decode to no character (a token boundary inside a Hangul syllable's UTF-8): text no reviewer
        # wants to train on as it is.
        where = [name for name, text in (("question", parsed.question), ("answer", parsed.answer)) if "\ufffd" in text]
        count = parsed.question.count("\ufffd") + parsed.answer.count("\ufffd")
        flags.append(
            Flag(
                "malformed",
                1.0,
                f"Broken characters (U+FFFD, {count}) in the {' and the '.join(where)}: edit them out or reject.",
            )
        )
    for flag in (
        _truncated(parsed.question, parsed.answer, finish_reason, cfg),
        _echo(source, parsed.question, parsed.answer, cfg),
        _language(source, parsed.question, parsed.answer, cfg),
        _repetition(parsed.question, parsed.answer, raw, cfg),
        _unsupported(source, parsed.question, parsed.answer, cfg),
    ):
        if flag is not None:
            flags.append(flag)
    for flag in flags:
        flag.severity = cfg.severities.get(flag.name, Severity.WARNING)
    scores = {name: 0.0 for name in FLAG_NAMES}
    for flag in flags:
        scores[flag.name] = flag.score
    return Assessment(parsed.question, parsed.answer, flags, scores)


# --- duplicates ----------------------------------------------------------------------------------------------------
_NORMALIZE = re.compile(r"[\W_]+", re.UNICODE)


def question_key(question: str) -> str:
    return _NORMALIZE.sub("", unicodedata.normalize("NFC", question).lower())


def shingles(question: str) -> set[str]:
    return _key_shingles(question_key(question))


def _key_shingles(key: str) -> set[str]:
    if len(key) < 3:
        return {key} if key else set()
    return {key[i : i + 3] for i in range(len(key) - 2)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def question_similarity(
    a: str,
    b: str,
    *,
    threshold: float = DEFAULTS["duplicate.similarity"],
    term_threshold: float = DEFAULTS["duplicate.term_similarity"],
) -> float:
    """How alike two questions are, 0 below both thresholds: their content-term similarity (paraphrases) when it
    reaches `term_threshold`, else their character-trigram similarity (near-copies) when it reaches `threshold`."""
    key_a, key_b = question_key(a), question_key(b)
    if key_a == key_b:
        return 1.0
    return _compared(_compared_form(a, key_a), _compared_form(b, key_b), threshold=threshold, term_threshold=term_threshold)


def _compared_form(question: str, key: str) -> tuple[frozenset, str, int]:
    """What the duplicate comparison reads of a question: its terms, normalised text and number of distinct trigrams."""
    return question_terms(question), key, len(_key_shingles(key))


def _compared(
    mine: tuple[frozenset, str, int], other: tuple[frozenset, str, int], *, threshold: float, term_threshold: float, my_grams=None
) -> float:
    """Term similarity when it reaches `term_threshold`, else trigram similarity of the texts when it reaches
    `threshold`, else 0. `my_grams`: the trigrams of `mine`, when at hand. Two trigram sets whose sizes differ more than
    the threshold allows are not compared (their Jaccard similarity is at most the smaller size over the larger)."""
    terms = term_similarity(mine[0], other[0])
    if terms >= term_threshold:
        return terms
    if min(mine[2], other[2]) < threshold * max(mine[2], other[2]):
        return 0.0
    grams = jaccard(my_grams if my_grams is not None else _key_shingles(mine[1]), _key_shingles(other[1]))
    return grams if grams >= threshold else 0.0


# --- duplicate candidates ------------------------------------------------------------------------------------------
# Candidates are found by keys, (band, hash) pairs that two similar questions share; the in-memory index and the
# project-wide one stored in the database (`QuestionBand`) use the same keys, from `question_bands`. Every candidate is
# verified exactly (`DuplicateIndex.similarity`, `question_similarity`).
EXACT_BAND = -1  # the question without case, spaces and punctuation
TRIGRAM_BANDS, TRIGRAM_ROWS = 16, 4  # MinHash LSH over the character trigrams of a question without usable terms
TERM_BAND = 16  # combinations of a question's rarest terms: every pair over `term_threshold` shares one
NEAR_BAND = 17  # the content terms, and from NEAR_MIN_TERMS of them on each set with one left out: near-copies
_CANONICAL_FORMS = frozenset(CANONICAL.values())
NEAR_MIN_TERMS = 4


def _key_hash(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big", signed=True)


@lru_cache(maxsize=100_000)
def _term_rank(term: str) -> tuple[int, int]:
    """A fixed order of terms, rarest kinds first: subject words, then the canonical forms of the question vocabulary
    (synonyms.py), then single syllables and numbers, then what is asked ("?how"). Any fixed order
    finds the same candidates; this one keeps the keys' buckets small, since a question's keys are drawn from its
    first terms. Within a kind the order is a stable hash (not Python's, which changes per process)."""
    if term.startswith("?"):
        kind = 3
    elif len(term) == 1 or term.isdigit():
        kind = 2
    elif term in _CANONICAL_FORMS:
        kind = 1
    else:
        kind = 0
    return kind, zlib.crc32(term.encode())


def _shared_terms(term_threshold: float) -> int:
    """How many terms any two questions over `term_threshold` share at least, both having `MIN_TERMS` or more: a
    Jaccard similarity over 2/3 needs three shared terms unless both are the same two terms; over 1/3, two."""
    return 3 if term_threshold > 2 / 3 else 2 if term_threshold > 1 / 3 else 1


def term_keys(terms: frozenset[str], term_threshold: float) -> list[tuple[str, ...]]:
    """Prefix filtering (the all-pairs set similarity join): two sets with Jaccard similarity ≥ t share at least
    ceil(t·n) of the n terms of either; in a fixed order of terms, their first m shared terms lie within the first
    n − ceil(t·n) + m terms of each, so every m-combination of those is a key and the two share one. m is the number of
    terms such questions share at least (`_shared_terms`), or all of a shorter set's. The keys carry what the question
    asks, which two similar questions have in common (`term_similarity`). Exact: every pair with term similarity ≥ t
    shares a key, whatever the order; rare terms first only makes the keys rarer."""
    n = len(terms)
    if not MIN_TERMS <= n <= MAX_TERMS:
        return []
    order = sorted(terms, key=_term_rank)
    m = min(n, _shared_terms(term_threshold))
    prefix = min(n, n - math.ceil(term_threshold * n - 1e-9) + m)
    asked = ",".join(sorted(t for t in terms if t.startswith("?")))
    return [(asked, *combination) for combination in combinations(order[:prefix], m)]


def near_keys(terms: frozenset[str]) -> list[tuple[str, ...]]:
    """Keys for near-copies, questions whose characters are almost all the same (trigram similarity ≥ `threshold`)
    while their terms are not similar enough: the content terms without what is asked (the same question with another
    interrogative, which term similarity keeps apart) and, from four content terms on, each set of all of them but one
    (a word swapped)."""
    content = sorted(t for t in terms if not t.startswith("?"))
    if not content or len(terms) > MAX_TERMS:
        return []
    keys = [tuple(content)]
    if len(content) >= NEAR_MIN_TERMS:
        keys += [tuple(content[:i] + content[i + 1 :]) for i in range(len(content))]
    return keys


@lru_cache(maxsize=1)
def _trigram_permutations():
    from datasketch import MinHash

    template = MinHash(num_perm=TRIGRAM_BANDS * TRIGRAM_ROWS)
    return {"permutations": template.permutations, "scheme": template.scheme}


def _trigram_minhash(grams: list[bytes]):
    """The MinHash values of a question's trigrams. Its permutations are made once: MinHash drew them from the seed
    for every question, a third of the time of a passage's bands (the values are the same)."""
    from datasketch import MinHash

    return MinHash.bulk([grams], num_perm=TRIGRAM_BANDS * TRIGRAM_ROWS, **_trigram_permutations())[0].hashvalues


def question_bands(question: str, term_threshold: float = DEFAULTS["duplicate.term_similarity"]) -> list[tuple[int, int]]:
    """The keys of a question, (band, 64-bit hash): its normalised text (band -1); for a question of `MIN_TERMS` to
    `MAX_TERMS` content terms, its term keys (`term_keys`, paraphrases) and near-copy keys (`near_keys`); for one of a
    single term, its near-copy key; for one without terms or a passage, MinHash LSH bands of its character trigrams
    (16 bands of 4 rows: a trigram similarity of 0.9 shares a band with probability > 0.999)."""
    key = question_key(question)
    if not key:
        return []
    bands = [(EXACT_BAND, _key_hash(key))]
    terms = question_terms(question)
    if terms and len(terms) <= MAX_TERMS:
        bands += [(TERM_BAND, _key_hash("t", *k)) for k in term_keys(terms, term_threshold)]
        bands += [(NEAR_BAND, _key_hash("n", *k)) for k in near_keys(terms)]
        return bands
    grams = shingles(question)
    values = _trigram_minhash([("#" + g).encode() for g in grams])
    return bands + [
        (b, _key_hash("g", values[b * TRIGRAM_ROWS : (b + 1) * TRIGRAM_ROWS].tobytes().hex())) for b in range(TRIGRAM_BANDS)
    ]


class DuplicateIndex:
    """Duplicate questions among those added so far: candidates share a key of `question_bands` (paraphrases through
    their terms, near-copies through their term sets or character trigrams), verified by `similarity` against
    `term_threshold` (paraphrases) and `threshold` (character trigrams, near-copies). Exact duplicates (after
    normalising case, spaces and punctuation) are found by key. The project-wide search stores the same keys
    (`QuestionBand`)."""

    def __init__(
        self,
        threshold: float = DEFAULTS["duplicate.similarity"],
        term_threshold: float = DEFAULTS["duplicate.term_similarity"],
    ):
        self.threshold = threshold
        self.term_threshold = term_threshold
        self.keys: dict[str, int] = {}
        self.buckets: dict[tuple[int, int], list[int]] = {}
        # Per question, in the order added: its id, and what `similarity` compares: its terms, normalised text and
        # number of distinct character trigrams (the trigrams themselves are computed again for the few candidates
        # compared by characters, rather than held for every question).
        self.items: list[tuple[object, tuple[frozenset, str, int]]] = []

    @classmethod
    def for_config(cls, cfg: FilterConfig) -> DuplicateIndex:
        return cls(cfg["duplicate.similarity"], term_threshold=cfg["duplicate.term_similarity"])

    def similarity(self, mine: tuple[frozenset, str, int], other: tuple[frozenset, str, int], *, my_grams=None) -> float:
        """`question_similarity` of two indexed questions (`_compared_form`s) whose keys differ."""
        return _compared(mine, other, threshold=self.threshold, term_threshold=self.term_threshold, my_grams=my_grams)

    def check_and_add(self, item_id, question: str, *, bands=None) -> tuple[object | None, float]:
        """The most similar earlier question (id, similarity) at or over the threshold, the earliest added of equally
        similar ones, then index this one. `bands`: the question's `question_bands`, when already computed."""
        key = question_key(question)
        if not key:
            return None, 0.0
        if key in self.keys:
            return self.items[self.keys[key]][0], 1.0
        if bands is None:
            bands = question_bands(question, self.term_threshold)
        candidates = set()
        for band in bands:
            if band[0] != EXACT_BAND and (bucket := self.buckets.get(band)):
                candidates.update(bucket)
        my_grams = _key_shingles(key)
        mine = (question_terms(question), key, len(my_grams))  # _compared_form, its trigrams kept for the comparisons
        best, best_sim = None, 0.0
        for candidate in sorted(candidates):
            sim = self.similarity(mine, self.items[candidate][1], my_grams=my_grams)
            if sim > best_sim:
                best, best_sim = candidate, sim
        position = len(self.items)
        self.items.append((item_id, mine))
        self.keys[key] = position
        for band in bands:
            if band[0] != EXACT_BAND:
                self.buckets.setdefault(band, []).append(position)
        return (self.items[best][0] if best is not None else None), best_sim


def duplicate_flag(similar_to, similarity: float, *, same_chunk: bool, label: str) -> Flag:
    where = "another sample of the same chunk" if same_chunk else "a question elsewhere in the project"
    kind = "the same as" if similarity >= 0.999 else f"{similarity:.0%} similar to"
    return Flag(
        "duplicate",
        round(similarity, 3),
        f"The question is {kind} {where} ({label} {similar_to}).",
        severity=SEVERITIES[FlagName.DUPLICATE],
        details={"similar_to": similar_to},
    )
