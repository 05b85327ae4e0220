"""Korean text as the filters see it: content morphemes (Kiwi), canonical question terms for duplicates, and the facts of
an answer (numbers with their units, dates, Latin-script names, nouns) for the `unsupported` check.

Kiwi analyses each whitespace-separated word on its own and the result is cached per word: questions and answers reuse
a small vocabulary, so after the first thousands of pairs nearly every word is a cache hit (benchmarks/filters.py).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from workbench.quality.synonyms import CANONICAL, VERB_STEMS

_lock = threading.Lock()
_kiwi = None


def _get_kiwi():
    global _kiwi
    with _lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            _kiwi = Kiwi(num_workers=-1)
        return _kiwi


@lru_cache(maxsize=500_000)
def analyse_word(word: str) -> tuple[tuple[str, str, int, int], ...]:
    """Morphemes of one word: (form, tag, start, length), offsets within the word."""
    kiwi = _get_kiwi()
    with _lock:
        tokens = kiwi.tokenize(word)
    return tuple((t.form, t.tag, t.start, t.len) for t in tokens)


_WORD = re.compile(r"\S+")


def morphemes(text: str) -> list[tuple[str, str, int, int]]:
    """(form, tag, start, length) for the whole text, offsets in `text`."""
    out = []
    for match in _WORD.finditer(text):
        base = match.start()
        out += [(f, t, base + s, n) for f, t, s, n in analyse_word(match.group())]
    return out


# --- question terms (duplicates) ---------------------------------------------------------------------------------------
# Words of the question's frame rather than its subject: "…에 대해 설명해 주세요", "…의 의미는 무엇인가요", "…할 수
# 있나요". Two questions about different subjects in the same frame share only these, and they are dropped.
FRAME = frozenset(
    """설명 알리 알 주 대하 관하 관련 의미 내용 무엇 뭐 어떤 어느 어떠하 말하 하 되 있 이 것 수 등 때 중 바 데 점 측면
    뜻 자세히 간단히 구체 구체적 요약 정리 다루 담 나타내 대해서 관해서 경우 부분 사항 관 서술 기술 소개 살펴보
    그렇 이러하 그러하 또 및 또는 그리고 좀 혹시 가지 대상 사람 누구인가 그것 이것 무슨 해당 것인가
    묻 질문 답 답하 궁금 알아보 보 싶 말 대한 거치 지""".split()
    # Particles that Kiwi reads as a one-syllable noun after an unknown word ("재산권의은" → … 은/NNG).
    + "은 는 을 를 의 에 와 과 로 도 만".split()
)
_INTERROGATIVES = {
    "누구": "?who",
    "누가": "?who",
    "언제": "?when",
    "어디": "?where",
    "왜": "?why",
    "어째서": "?why",
    "얼마": "?howmuch",
    "몇": "?howmuch",
    "어떻게": "?how",
    "어떻": "?how",
    "얼마나": "?howmuch",
}
# What a question asks, said with a noun instead of an interrogative: "선출 방법은 무엇인가요" asks what "어떻게
# 선출되나요" asks, "시행 시점은" what "언제 시행되나요", "개정 이유는" what "왜 개정하나요", "발의 주체는" what "누가
# 발의하나요". Keyed by canonical form (synonyms.py: 방식 and 절차 are 방법, 이유 and 까닭 are 목적).
_ASKED = {
    "방법": "?how",
    "목적": "?why",
    "시점": "?when",
    "시기": "?when",
    "일시": "?when",
    "주체": "?who",
    "장소": "?where",
    "위치": "?where",
}
_CONTENT_TAGS = {"NNG", "NNP", "NNB", "NR", "VV", "VA", "XR", "SL", "SH", "SN", "NP", "MAG", "MM", "VV-R", "VV-I", "VA-R", "VA-I"}
_SUFFIXES = (
    "안",
    "권",
    "법",
    "자",
    "제",
    "률",
    "율",
    "액",
    "일",
    "기간",
    "기관",
    "위원회",
    "절차",
    "요건",
    "조건",
    "방법",
    "이유",
)


def _split_compound(noun: str) -> list[str]:
    """A Sino-Korean compound with a common head ("개정안" → 개정 + 안), so "개정안" meets "개정하는 안"."""
    for suffix in _SUFFIXES:
        if len(noun) >= len(suffix) + 2 and noun.endswith(suffix):
            return [noun[: -len(suffix)], suffix]
    return [noun]


def canonical(term: str) -> str:
    return CANONICAL.get(term, term)


@lru_cache(maxsize=200_000)
def question_terms(question: str) -> frozenset[str]:
    """The question's content morphemes without its frame, synonyms mapped to one canonical form."""
    text = unicodedata.normalize("NFC", question).lower()
    words = _WORD.findall(text)
    if len(words) == 1:
        return _word_terms(words[0])
    return frozenset().union(*map(_word_terms, words))


@lru_cache(maxsize=500_000)
def _word_terms(word: str) -> frozenset[str]:
    """The terms of one (lower-case) word: Kiwi analyses each word on its own (`morphemes`), so a question's terms are
    the union of its words', and a word's are worked out once."""
    terms = set()
    for form, tag, _, _ in analyse_word(word):
        if form in _INTERROGATIVES:
            terms.add(_INTERROGATIVES[form])
            continue
        if tag not in _CONTENT_TAGS or tag in {"MAG", "MM", "NP"} and form not in _INTERROGATIVES:
            continue
        if form in FRAME:
            continue
        for part in _split_compound(form) if tag == "NNG" else [form]:
            # A one-syllable verb stem of a synonym group stands for it only as a verb: the 살 of "몇 살" is an age,
            # not 살- (거주), the 열 of "열 명" a number, not 열- (개최).
            part = part if part in VERB_STEMS and not tag.startswith("V") else canonical(part)
            part = _ASKED.get(part, part)
            if part and part not in FRAME:
                terms.add(part)
    return frozenset(terms)


MIN_TERMS = 2
# A text with more content terms than this is a passage (an echoed source), not a question: overlapping excerpts of one
# chunk share most of their words without asking the same thing. Only their characters are compared.
MAX_TERMS = 16


def _asked(terms: frozenset[str]) -> frozenset[str]:
    return frozenset(t for t in terms if t[0] == "?")


def term_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of canonical terms. A question with fewer than two content terms ("법률에 대해 설명해
    주세요") matches nothing this way: its subject alone does not say what it asks. Nor do two questions that ask
    different things of one subject ("누가 발의하나요" / "언제 발의되나요", or one of them only "…에 대해 알려 주세요")."""
    if not MIN_TERMS <= len(a) <= MAX_TERMS or not MIN_TERMS <= len(b) <= MAX_TERMS or _asked(a) != _asked(b):
        return 0.0
    return len(a & b) / len(a | b)


# --- facts (unsupported) -----------------------------------------------------------------------------------------------
_UNITS = {
    "년": "년",
    "해": "년",
    "개월": "개월",
    "달": "개월",
    "월": "월",
    "일": "일",
    "명": "명",
    "사람": "명",
    "개": "개",
    "강": "강",
    "%": "%",
    "퍼센트": "%",
    "프로": "%",
    "배": "배",
    "조": "조",
    "항": "항",
    "호": "호",
    "세": "세",
    "살": "세",
    "원": "원",
    "회": "회",
    "차": "차",
    "번": "번",
    "번째": "번째",
    "시": "시",
    "분": "분",
    "초": "초",
    "석": "석",
    "위": "위",
    "km": "km",
    "킬로미터": "km",
    "m": "m",
    "미터": "m",
    "kg": "kg",
    "톤": "톤",
    "층": "층",
    "권": "권",
    "건": "건",
    "곳": "곳",
    "대": "대",
    "가지": "가지",
    "주": "주",
    "주년": "주년",
    "시간": "시간",
    "표": "표",
    "단계": "단계",
    "기": "기",
    # Counters that make another noun of the one they begin with: a line, a decade, a century are not a number, a year
    # or an age ("2호선", "1980년대", "21세기"), and the longest is matched first.
    "호선": "호선",
    "년대": "년대",
    "세기": "세기",
    "년도": "년",
    "학년": "학년",
    "개국": "개국",
    "분기": "분기",
}
_UNIT_RE = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_SCALES = {"천": 1000, "만": 10_000, "억": 100_000_000, "조": 1_000_000_000_000}
_ARABIC = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(천|만|억)?\s*(" + _UNIT_RE + r")?")
_FRACTION = re.compile(r"(?<![\d.,])(\d+)\s*분의\s*(\d+)")
_DATE = re.compile(r"(?<!\d)(\d{4})\s*[.\-/]\s*(\d{1,2})\s*[.\-/]\s*(\d{1,2})(?!\d)")
_NATIVE = {
    "한": 1,
    "하나": 1,
    "두": 2,
    "둘": 2,
    "세": 3,
    "셋": 3,
    "네": 4,
    "넷": 4,
    "다섯": 5,
    "여섯": 6,
    "일곱": 7,
    "여덟": 8,
    "아홉": 9,
    "열": 10,
    "스무": 20,
    "스물": 20,
    "서른": 30,
    "마흔": 40,
    "쉰": 50,
}
_NATIVE_RE = re.compile(
    r"(?<![가-힣])("
    + "|".join(sorted(_NATIVE, key=len, reverse=True))
    + r")\s?(명|개|가지|해|달|사람|번|살|배|곳|권|건|대)(?![가-힣]{2})"
)
_SINO_DIGITS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7, "팔": 8, "구": 9}
_SINO_RE = re.compile(
    r"(?<![가-힣])([일이삼사오육칠팔구십백천]{1,6})\s?(년|개월|명|세|배|조|항|호|퍼센트|차|회)(?=[\s은는이가을를의에와과도만로으,.]|$)"
)
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9&.\-]*[A-Za-z0-9]|[A-Z]")


def _sino_value(text: str) -> int | None:
    total, digit = 0, None
    for ch in text:
        if ch in _SINO_DIGITS:
            if digit is not None:
                return None
            digit = _SINO_DIGITS[ch]
        else:
            total += (digit or 1) * {"십": 10, "백": 100, "천": 1000}[ch]
            digit = None
    total += digit or 0
    # "이" or "사" alone before a counter is far more often a word ("이 조항", "사 명" is rare): require a multiplier
    # or a digit of more than one syllable's ambiguity.
    if len(text) == 1 and text in "이사구일":
        return None
    return total or None


def _number(value: str) -> str:
    try:
        number = Decimal(value.replace(",", ""))
    except InvalidOperation:
        return value
    return format(number.normalize(), "f")


@lru_cache(maxsize=4096)
def numeric_facts(text: str) -> tuple[tuple[str, str, int, int], ...]:
    """(value, unit, start, end) of every number: Arabic digits with separators and decimals, a scale word (만, 억) and a
    unit or counter; dates written 1974. 8. 15.; simple Korean numerals before a counter (두 명, 삼십 년)."""
    facts = []
    # Fractions first, so that their digits are not also read as bare numbers ("3분의 2" is one fact).
    for m in _FRACTION.finditer(text):
        facts.append((f"{m.group(2)}/{m.group(1)}", "분의", m.start(), m.end()))
    for m in _ARABIC.finditer(text):
        value = Decimal(_number(m.group(1) + (m.group(2) or "")))
        if m.group(3):
            value *= _SCALES[m.group(3)]
        unit = _UNITS.get(m.group(4) or "", "")
        end = m.end() if m.group(4) else m.start() + len(m.group(1) + (m.group(2) or "")) + (len(m.group(3) or ""))
        facts.append((format(value.normalize(), "f"), unit, m.start(), end))
    for m in _DATE.finditer(text):
        for value, unit in zip(m.groups(), ("년", "월", "일")):
            facts.append((_number(value), unit, m.start(), m.end()))
    for m in _NATIVE_RE.finditer(text):
        facts.append((str(_NATIVE[m.group(1)]), _UNITS.get(m.group(2), m.group(2)), m.start(), m.end()))
    for m in _SINO_RE.finditer(text):
        value = _sino_value(m.group(1))
        if value is not None:
            facts.append((str(value), _UNITS.get(m.group(2), m.group(2)), m.start(), m.end()))
    return tuple(facts)


_SPACES = re.compile(r"\s+")
_NOT_HANGUL = re.compile(r"[^가-힣]")
_NOT_HANGUL_OR_SPACE = re.compile(r"[^가-힣 ]+")
_HANGUL_OR_HANJA = re.compile(r"[가-힣]+|[\u4e00-\u9fff]+")
_NOT_LETTER = re.compile(r"[^가-힣\u4e00-\u9fff]+")


# Sentences state their own facts. A period ends one only before a space that no digit follows: "1.5배",
# "1988. 2. 25.부터" end none.
_SENTENCE = re.compile(r"[^\s](?:[^\n.!?。]|[.!?。](?=\S|\s\d))*[.!?。]?")
# An answer's sentence may join two of the source's ("…168석으로 2위를 차지하였고, RN은 143석을 얻는 데 그쳤습니다"):
# its clauses, split at a comma before a space, are aligned one by one.
_CLAUSE = re.compile(r"[^\s](?:[^\n.!?。,]|[.!?。,](?=\S|\s\d))*[.!?。,]?")
# An answer's sentence is aligned with the source sentence that holds this share of its Hangul character pairs.
ALIGNED_SHARE = 0.6
# For a noun in another's place, less to begin with: the noun itself takes a short clause's pairs ("국무총리는" for
# "대통령은" leaves 5 of 11); below ALIGNED_SHARE the rest of the clause, without the word, must reach it.
NOUN_ALIGNED_SHARE = 0.4


def _hangul_pairs(text: str) -> frozenset[str]:
    letters = _NOT_HANGUL.sub("", text)
    return frozenset(map(str.__add__, letters, letters[1:]))


class SourceFacts:
    """What a source chunk supports: its numbers (with and without unit), its Latin words, its text without spaces,
    and per sentence its Hangul character pairs and its numbers by unit."""

    def __init__(self, source: str):
        self.compact = _SPACES.sub("", source)
        self.compact_lower = self.compact.lower()
        self.letters = _NOT_LETTER.sub("", source)
        facts = numeric_facts(source)
        self.numbers = {(v, u) for v, u, _, _ in facts} | {(v, "") for v, _, _, _ in facts}
        self.sentences = []  # (Hangul character pairs, numbers by unit, Hangul and Hanja letters) of each sentence
        # The Hangul letters of each word of each sentence, and the same joined by spaces: read when a clause's word
        # may have swapped roles.
        self.sentence_words, self.sentence_spaced = [], []
        for m in _SENTENCE.finditer(source):
            sentence = m.group()
            by_unit: dict[str, set[str]] = {}
            for v, u, _, _ in numeric_facts(sentence):
                by_unit.setdefault(u, set()).add(v)
            self.sentences.append((_hangul_pairs(sentence), by_unit, _NOT_LETTER.sub("", sentence)))
            words = _NOT_HANGUL_OR_SPACE.sub("", sentence).split()
            self.sentence_words.append(words)
            self.sentence_spaced.append(" " + " ".join(words) + " ")
        # A number that every sentence stating its unit states (the only 년 of the chunk is 5년) conflicts with none.
        self.unanimous = {
            (v, u) for v, u, _, _ in facts if all(v in by_unit[u] for _, by_unit, _ in self.sentences if u in by_unit)
        }

    def shares(self, pairs: frozenset[str]) -> list[float]:
        """The share of an answer clause's Hangul character pairs each sentence holds (none for under four pairs)."""
        if len(pairs) < 4:
            return []
        size = len(pairs)
        return [len(pairs & mine) / size for mine, _, _ in self.sentences]

    @staticmethod
    def aligned(shares: list[float], minimum: float = ALIGNED_SHARE) -> list[int] | None:
        """The sentences an answer's clause restates: the one holding the largest share of its Hangul character pairs,
        at least `minimum` of them, and those within 0.05 of it. None when no sentence holds enough."""
        best = max(shares, default=0.0)
        if best < minimum:
            return None
        return [i for i, share in enumerate(shares) if share >= best - 0.05]

    def conflicting(self, aligned: list[int] | None, value: str, unit: str) -> set[str] | None:
        """The values the source gives for `unit` in the sentences the answer's sentence is aligned with, when none of
        them is `value`: the number is in the source, but as another fact ("대법원장의 임기는 5년" where the source says
        6년 and 5년 is the president's term). None when aligned with no sentence or when one of them agrees."""
        if not unit or not aligned:
            return None
        values = set()
        for i in aligned:
            by_unit = self.sentences[i][1]
            if value in by_unit.get(unit, ()):
                return None
            values |= by_unit.get(unit, set())
        return values or None


@lru_cache(maxsize=256)
def source_facts(source: str) -> SourceFacts:
    return SourceFacts(source)


_NOUN_TAGS = {"NNG", "NNP", "SH"}


def answer_facts(answer: str, source: str, question: str = "") -> dict:
    """The facts of the answer and which of them the source lacks.

    Strict facts (each one missing counts): numbers with their unit, Latin-script names, proper nouns. Common nouns
    are a paraphrase's material, so they count only together, and a noun the question used is not held against the
    answer."""
    src = source_facts(source)
    missing, strict, nouns, nouns_missing = [], 0, 0, 0
    covered = []  # character ranges of the answer already judged as numbers
    clauses = None  # the answer's clauses, split when a number needs its own
    clause_shares: dict[int, list[float]] = {}  # a clause's start: the share of its pairs each sentence holds

    def shares_of(clause: tuple[int, int, str]) -> list[float]:
        if clause[0] not in clause_shares:
            clause_shares[clause[0]] = src.shares(_hangul_pairs(clause[2]))
        return clause_shares[clause[0]]

    for value, unit, start, end in numeric_facts(answer):
        if any(s <= start < e for s, e in covered):
            continue
        covered.append((start, end))
        strict += 1
        if (value, unit) in src.numbers or (value, "") in src.numbers or not unit and any(v == value for v, _ in src.numbers):
            if not unit or (value, unit) in src.unanimous:
                continue
            if clauses is None:
                clauses = [(m.start(), m.end(), m.group()) for m in _CLAUSE.finditer(answer)]
            clause = next((c for c in clauses if c[0] <= start < c[1]), None)
            if clause is None or not src.conflicting(src.aligned(shares_of(clause)), value, unit):
                continue
            # In the chunk, but the sentence it restates gives another value: misplaced, as a noun would be.
            missing.append({"text": answer[start:end].strip(), "kind": "misplaced", "start": start, "end": end})
            continue
        missing.append({"text": answer[start:end].strip(), "kind": "number", "start": start, "end": end})
    for m in _LATIN.finditer(answer):
        if any(s <= m.start() < e for s, e in covered) or len(m.group()) < 2 and not m.group().isupper():
            continue
        strict += 1
        if m.group().lower() not in src.compact_lower:
            missing.append({"text": m.group(), "kind": "name", "start": m.start(), "end": m.end()})
    question_compact = None  # the question without spaces, when a noun is missing from the source
    words = answer.split()  # the matches of `_WORD`
    # The Hangul letters of each word, from one pass over the words joined by spaces (which no word holds).
    letters = _NOT_HANGUL_OR_SPACE.sub("", " ".join(words)).split(" ")
    end = 0
    for word, hangul in zip(words, letters):
        word_start = answer.find(word, end)
        end = word_start + len(word)
        if len(hangul) < 2 or hangul in src.compact:
            # A word found as it is in the source supports every noun in it; no analysis needed.
            if len(hangul) >= 2:
                nouns += 1
            continue
        for form, tag, start, length in analyse_word(word):
            if tag not in _NOUN_TAGS or len(form) < 2 or not _HANGUL_OR_HANJA.fullmatch(form):
                continue
            begin = word_start + start
            if any(s <= begin < e for s, e in covered):
                continue
            if form in src.compact or canonical(form) != form and canonical(form) in src.compact:
                nouns += tag != "NNP"
                strict += tag == "NNP"
                continue
            if tag == "NNP":
                strict += 1
                missing.append({"text": form, "kind": "name", "start": begin, "end": begin + length})
            else:
                nouns += 1
                if question_compact is None:
                    question_compact = _SPACES.sub("", question)
                if form in question_compact:
                    continue
                nouns_missing += 1
                missing.append({"text": form, "kind": "noun", "start": begin, "end": begin + length})
    if _NOT_LETTER.sub("", answer)[:-3] not in src.letters:
        if clauses is None:
            clauses = [(m.start(), m.end(), m.group()) for m in _CLAUSE.finditer(answer)]
        for clause in clauses:
            if _NOT_LETTER.sub("", clause[2])[:-3] in src.letters:
                continue  # the source's own words up to the clause's ending: nothing in it is out of place
            for fact in _misplaced(src, clause, shares_of(clause), covered):
                if question_compact is None:
                    question_compact = _SPACES.sub("", question)
                if fact["text"] in question_compact:
                    continue
                # A noun counted among the missing common nouns above is now a strict fact.
                inside = [m for m in missing if m["kind"] == "noun" and fact["start"] <= m["start"] < fact["end"]]
                if inside:
                    missing = [m for m in missing if m not in inside]
                    nouns_missing -= len(inside)
                strict += 1
                missing.append(fact)
    return {"missing": missing, "strict": strict, "nouns": nouns, "nouns_missing": nouns_missing}


def _replaced(here: str, before: str | None, after: str, size: int) -> str | None:
    """The letters of about `size` that the sentence has between `before` and `after`: the word the answer's word stands
    in for; for the clause's first word (`before` None), at the sentence's start. None where there is none. A one-letter
    neighbour (이, 수, 그, or the first letter kept of a last word) is found anywhere and proves nothing: None."""
    if len(before if before is not None else after) < 2:
        return None
    gap = f"(.{{1,{size + 4}}}?)"
    pattern = re.escape(before) + gap + re.escape(after) if before is not None else "^" + gap + re.escape(after)
    for sentence in here.split("\n"):
        if m := re.search(pattern, sentence):
            return m.group(1)
    return None


# Particles that are one case in two spellings, after a consonant or a vowel.
_PARTICLE_CASE = {"는": "은", "가": "이", "를": "을", "과": "와", "로": "으로"}


def _onset(word: str) -> int:
    """The first syllable's initial consonant and vowel (됩 and 된 alike), -1 for no Hangul syllable."""
    return (ord(word[0]) - 0xAC00) // 28 if word and "가" <= word[0] <= "힣" else -1


def _subject(word: str) -> tuple[str, str, int, int] | None:
    """(noun, case particle, start, end of the noun) of a word that is one noun of two letters or more and a particle
    ("국무총리는"), else None."""
    analysed = analyse_word(word)
    if len(analysed) != 2:
        return None
    (noun, tag, offset, length), (particle, particle_tag, _, _) = analysed
    if tag not in ("NNG", "NNP") or len(noun) < 2 or not particle_tag.startswith("J") or word[offset : offset + length] != noun:
        return None
    return noun, _PARTICLE_CASE.get(particle, particle), offset, offset + length


def _positions(words: list[str], word: str) -> list[int]:
    """Where `word` is in `words` (found by list.index, without a Python loop over the words)."""
    found, i = [], -1
    try:
        while True:
            i = words.index(word, i + 1)
            found.append(i)
    except ValueError:
        return found


def _swapped(sentence: list[str], word: str, hangul: str, after: str, next_after: str | None) -> tuple[int, int, str] | None:
    """A noun of the sentence put in another noun's role: the clause says "국무총리는 국무회의의 의장이" where the
    sentence says "대통령은 국무회의의 의장이 되고, 국무총리는 부의장이 된다". The two words after it follow each other
    in the sentence as in the clause, once, after a word whose noun differs but whose particle is the same case (where
    the word after it ends the clause, that word alone, of three letters or more or ending the sentence as well); the
    word itself is the sentence's, elsewhere. (start, end, noun) of the noun in the word, or None."""
    if len(after) < 2 or hangul not in sentence:
        return None
    if next_after is None:
        # The clause's last word: the sentence's own where the clause ends at a comma, the sentence's last word with
        # the ending an answer changes ("가진다" → "가집니다": the first syllable's consonant and vowel compared).
        at = _positions(sentence, after) if len(after) >= 3 else []
        if not at and _onset(sentence[-1]) == _onset(after):
            at = [len(sentence) - 1]
    else:
        # The word after next may be the clause's last, whose ending answers change ("된다" → "됩니다").
        onset = _onset(next_after)
        at = [i for i in _positions(sentence, after) if i + 1 < len(sentence) and _onset(sentence[i + 1]) == onset]
    if len(at) != 1 or at[0] == 0 or sentence[at[0] - 1] == hangul or hangul in sentence[at[0] - 2 : at[0]]:
        return None
    onset = _onset(after)
    if any(sentence[i + 1 : i + 2] and _onset(sentence[i + 1]) == onset for i in _positions(sentence, hangul)):
        return None  # the sentence says it so where the word is its own ("의장이 되고" for "의장이 됩니다")
    mine, theirs = _subject(word), _subject(sentence[at[0] - 1])
    if (
        mine is None
        or theirs is None
        or mine[0] == theirs[0]
        or mine[1] != theirs[1]
        or canonical(mine[0]) == canonical(theirs[0])
    ):
        return None
    return mine[2], mine[3], mine[0]


def _misplaced(src: SourceFacts, clause: tuple[int, int, str], shares: list[float], covered) -> list[dict]:
    """Nouns of the chunk in the wrong place: the clause restates a sentence of the source, the words on either side of
    a word are that sentence's own, and the word's noun is not in the sentence but elsewhere in the chunk ("국회의장은
    국가의 원수이며" where the sentence says "대통령은 국가의 원수이며" and 국회의장 is named in another). A noun the
    clause adds with its own context (a second fact joined in) has neighbours the sentence lacks and is left alone."""
    aligned = src.aligned(shares, NOUN_ALIGNED_SHARE)
    if not aligned:
        return []
    strong = max(shares) >= ALIGNED_SHARE
    texts = [src.sentences[i][2] for i in aligned]
    joined = texts[0] if len(texts) == 1 else "\n".join(texts)
    start, _, text = clause
    words = text.split()
    letters = _NOT_HANGUL_OR_SPACE.sub("", " ".join(words)).split(" ")
    found = []
    end = 0
    for k, (word, hangul) in enumerate(zip(words, letters)):
        word_start = text.find(word, end)
        end = word_start + len(word)
        if len(hangul) < 2:
            continue
        if hangul in joined and (len(texts) == 1 or all(hangul in t for t in texts)):
            # A word followed by the word the sentence has after it restates the sentence (most words): not swapped.
            if (
                strong
                and len(texts) == 1
                and k + 1 < len(letters)
                and f" {hangul} {letters[k + 1]} " not in src.sentence_spaced[aligned[0]]
            ):
                following = letters[k + 2] if k + 2 < len(letters) else None
                swapped = _swapped(src.sentence_words[aligned[0]], word, hangul, letters[k + 1], following)
                if swapped is not None:
                    begin = start + word_start + swapped[0]
                    if not any(s <= begin < e for s, e in covered):
                        found.append(
                            {"text": swapped[2], "kind": "swapped", "start": begin, "end": start + word_start + swapped[1]}
                        )
            continue
        here = joined
        if not strong or hangul in joined:
            # Where the clause belongs is uncertain: the word takes a short clause's pairs with it ("국무총리는 국가의
            # 원수이다": 5 of its 11 in "대통령은 국가의 원수이며"), or the clause restates sentences as much as each other
            # and only some have the word. The sentences the rest of the clause restates decide, as firmly as for a
            # number; looked for only when the word has a noun.
            if not any(t in ("NNG", "NNP") and len(f) >= 2 for f, t, _, _ in analyse_word(word)):
                continue
            rest = src.aligned(src.shares(_hangul_pairs(text[:word_start] + " " + text[end:])), ALIGNED_SHARE)
            if not rest:
                continue
            here = "\n".join(src.sentences[i][2] for i in rest)
            if hangul in here:
                continue
        before = letters[k - 1] if k else ""
        after = letters[k + 1] if k + 1 < len(letters) else ""
        if k + 2 == len(letters):
            after = after[:1]  # the clause's last word carries the ending, which answers change ("진다" → "집니다")
        if not (before or after) or before not in here or after not in here:
            continue
        # Nouns written together are one fact (국회 + 의장: "국회의장"), judged by their parts.
        runs: list[list[tuple[str, int, int]]] = []
        for form, tag, offset, length in analyse_word(word):
            if tag not in ("NNG", "NNP") or not _HANGUL_OR_HANJA.fullmatch(form) or word[offset : offset + length] != form:
                runs.append([])
            elif runs and runs[-1] and runs[-1][-1][1] + len(runs[-1][-1][0]) == offset:
                runs[-1].append((form, offset, length))
            else:
                runs.append([(form, offset, length)])
        for run in runs:
            if not run:
                continue
            first, last = run[0][1], run[-1][1] + run[-1][2]
            if word[first:last] in here:
                continue
            # A part of two letters or more that its sentence lacks: another sentence of the chunk has it (misplaced),
            # or none has, nor a synonym of it (substituted: a wrong title or role in the sentence's own words).
            parts = [form for form, _, _ in run if len(form) >= 2 and form not in here]
            if not parts:
                continue
            kind = "misplaced" if any(form in src.compact for form in parts) else "substituted"
            # The sentence's own word in its place: needed for a noun the chunk lacks; a synonym (책무 / 의무) is no
            # other fact.
            replaced = _replaced(here, before if k else None, after, len(hangul))
            if replaced is None and kind == "substituted":
                continue
            if replaced is not None and {canonical(form) for form in parts} & {
                canonical(f) for f, _, _, _ in analyse_word(replaced)
            }:
                continue
            begin = start + word_start + first
            if not any(s <= begin < e for s, e in covered):
                found.append({"text": word[first:last], "kind": kind, "start": begin, "end": start + word_start + last})
    return found
