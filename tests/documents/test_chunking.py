"""Chunk invariants (hypothesis) and chunking of the Korean test documents (tests/fixtures/korean)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED_DATA
from workbench.documents.chunking import SENTENCE_WINDOW, ChunkSettings, KiwiSentenceSplitter, chunk_text
from workbench.documents.text import is_hard_wrapped, normalize_text


class PunctuationSplitter:
    """A cheap stand-in for Kiwi in the property tests only (thousands of examples); Kiwi runs in the others."""

    def boundaries(self, text):
        return [m.end() for m in re.finditer(r"[.!?]\s+", text) if m.end() < len(text)]


korean_words = st.text(alphabet="가나다라마바사아자차카타파하국민헌법제조항", min_size=1, max_size=12)
sentence = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(korean_words, min_size=1, max_size=40),
    st.sampled_from([".", "?", "!", "", "다."]),
)
separator = st.sampled_from([" ", "\n", "\n\n", "\n\n\n", "  "])
document = st.builds(
    lambda parts: "".join(s + sep for s, sep in parts).strip(), st.lists(st.tuples(sentence, separator), min_size=1, max_size=60)
)
chunk_settings = st.builds(
    lambda target, extra, overlap_frac: ChunkSettings(target=target, maximum=target + extra, overlap=int(target * overlap_frac)),
    st.integers(60, 600),
    st.integers(0, 400),
    st.sampled_from([0, 0, 0.1, 0.3]),
)


def covered_nonspace(text, chunks):
    covered = [False] * len(text)
    for c in chunks:
        for i in range(c.start, c.end):
            covered[i] = True
    return all(covered[i] or text[i].isspace() for i in range(len(text)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=document, cfg=chunk_settings)
def test_chunk_invariants(text, cfg):
    chunks = chunk_text(text, cfg, splitter=PunctuationSplitter())
    # Offsets map back to exact, trimmed document text, in order.
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        piece = text[c.start : c.end]
        assert piece == piece.strip() and piece
        assert c.size == len(piece)
        assert c.size <= cfg.maximum
    # Nothing lost: every non-space character is in some chunk.
    assert covered_nonspace(text, chunks)
    # Nothing duplicated beyond the configured overlap; chunks advance.
    for a, b in zip(chunks, chunks[1:]):
        assert b.start > a.start and b.end > a.end
        assert max(0, a.end - b.start) <= cfg.overlap
    # No sliver tails where merging fits.
    if len(chunks) > 1 and chunks[-1].size < cfg.min_size:
        assert chunks[-1].end - chunks[-2].start > cfg.maximum
    # Deterministic.
    assert chunks == chunk_text(text, cfg, splitter=PunctuationSplitter())


def read(path):
    return normalize_text(path.read_text(encoding="utf-8"))


def test_constitution_chunks_are_within_bounds_and_cover_the_text():
    text = read(SHARED_DATA / "constitution.txt")
    cfg = ChunkSettings()
    chunks = chunk_text(text, cfg)
    assert 15 <= len(chunks) <= 40
    assert all(c.size <= cfg.maximum for c in chunks)
    assert covered_nonspace(text, chunks)
    # Articles are kept whole: every chunk after the first starts at the beginning of a line.
    assert all(text[: c.start].rstrip(" ").endswith("\n") for c in chunks[1:])


SENTENCES = [
    "대한민국의 영토는 한반도와 그 부속도서로 한다.",
    "대한민국은 통일을 지향하며 평화적 통일 정책을 수립하고 이를 추진한다.",
    "국군은 국가의 안전보장과 국토방위의 신성한 의무를 수행함을 사명으로 한다.",
]


def test_long_paragraph_is_cut_at_kiwi_sentence_boundaries():
    text = " ".join(SENTENCES * 20)  # one 1,700-character line
    cfg = ChunkSettings(target=300, maximum=400)
    chunks = chunk_text(text, cfg, splitter=KiwiSentenceSplitter())
    assert len(chunks) > 3
    for c in chunks:
        assert c.size <= 400
        assert text[c.start : c.end].endswith("다.")  # never mid-sentence


def test_kobill_hard_wraps_are_repaired_before_chunking():
    raw = (SHARED_DATA / "kobill" / "1809890.txt").read_text(encoding="utf-8")
    assert is_hard_wrapped(normalize_text(raw, repair_wraps=False))
    text = normalize_text(raw)
    assert "보살핌이 필요한 나이이나" in text  # "필요" / "한" were split across lines
    assert "육아휴직을 할 수 있는" in text  # a break between words keeps its space
    assert not is_hard_wrapped(normalize_text((SHARED_DATA / "constitution.txt").read_text(encoding="utf-8"), repair_wraps=False))


def test_kiwi_splitter_offsets():
    text = "첫 번째 문장입니다. 두 번째 문장은 질문인가요? 세 번째."
    starts = KiwiSentenceSplitter().boundaries(text)
    assert [text[s : s + 2] for s in starts] == ["두 ", "세 "]


def test_token_measured_chunks(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    corpus = read(SHARED_DATA / "constitution.txt")
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator([corpus], trainers.BpeTrainer(vocab_size=600, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    cfg = ChunkSettings(unit="tokens", target=256, maximum=384, tokenizer=str(path))
    chunks = chunk_text(corpus, cfg)
    sizes = [len(tokenizer.encode(corpus[c.start : c.end]).ids) for c in chunks]
    assert sizes == [c.size for c in chunks]
    assert max(sizes) <= 384 and len(chunks) > 5
    # A model directory (what the project's Base model field takes) names its tokenizer.json the same way.
    assert chunk_text(corpus, ChunkSettings(unit="tokens", target=256, maximum=384, tokenizer=str(tmp_path))) == chunks


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"target": 500, "maximum": 400}, "at most the maximum"),
        ({"overlap": 900}, "overlap must be below"),
        ({"unit": "tokens"}, "need a tokenizer"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChunkSettings(**kwargs)


class RecordingSplitter(PunctuationSplitter):
    def __init__(self):
        self.seen: list[int] = []

    def boundaries(self, text):
        self.seen.append(len(text))
        return super().boundaries(text)


def test_text_without_whitespace_is_cut_at_the_maximum_in_linear_work():
    """2,000,000 characters without a space (6 MB of UTF-8): no sentence splitting over it, every chunk at most the
    maximum, and the characters measured grow linearly with the text (the cut used to re-measure the rest each time)."""
    import time

    text = "가" * 2_000_000
    cfg = ChunkSettings()
    measured = 0

    def counting_len(piece):
        nonlocal measured
        measured += len(piece)
        return len(piece)

    splitter = RecordingSplitter()
    chunks = chunk_text(text, cfg, splitter=splitter, measure=counting_len)
    assert max(splitter.seen, default=0) < 1000
    assert measured < 40 * len(text)
    assert all(c.size == c.end - c.start <= cfg.maximum for c in chunks)
    assert [(c.start, c.end) for c in chunks] == [(i, min(i + cfg.maximum, len(text))) for i in range(0, len(text), cfg.maximum)]

    started = time.perf_counter()
    assert chunk_text(text, cfg) == chunks  # Kiwi and len(), as on import
    print(f"2,000,000 unspaced characters chunked in {time.perf_counter() - started:.2f} s")


def test_long_run_inside_prose_is_cut_apart_from_its_sentences():
    prose = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다. " * 30
    text = prose + "https://example.com/" + "a" * 5000 + " " + prose
    cfg = ChunkSettings(target=300, maximum=400)
    chunks = chunk_text(text, cfg)  # real Kiwi on the prose
    assert all(c.size <= cfg.maximum for c in chunks)
    assert covered_nonspace(text, chunks)
    assert any(text[c.start : c.end].startswith("https://example.com/") for c in chunks)


class RecordingKiwi(KiwiSentenceSplitter):
    def __init__(self):
        self.seen: list[int] = []

    def boundaries(self, text):
        self.seen.append(len(text))
        return super().boundaries(text)


def test_line_longer_than_the_sentence_window_is_split_a_window_at_a_time():
    """One 60,000-character line (a one-record JSONL, a text file without line breaks): Kiwi, whose work grows faster
    than its input, is never handed more than a window, yet the chunks still end at its sentence boundaries."""
    text = " ".join(SENTENCES * 700)
    assert len(text) > 5 * SENTENCE_WINDOW
    cfg = ChunkSettings(target=300, maximum=400)
    splitter = RecordingKiwi()
    chunks = chunk_text(text, cfg, splitter=splitter)
    assert max(splitter.seen) <= SENTENCE_WINDOW
    assert sum(splitter.seen) <= 2 * len(text)
    assert all(c.size <= cfg.maximum for c in chunks)
    assert all(text[c.start : c.end].endswith("다.") for c in chunks)
    assert covered_nonspace(text, chunks)


def test_line_without_sentence_ends_is_split_a_window_at_a_time():
    words = "대한민국은 통일을 지향하며 평화적 통일 정책을 수립하고 이를 추진하고 "
    text = (words * 5000).strip()
    cfg = ChunkSettings()
    splitter = RecordingSplitter()
    chunks = chunk_text(text, cfg, splitter=splitter)
    assert max(splitter.seen) <= SENTENCE_WINDOW
    assert all(c.size <= cfg.maximum for c in chunks)
    assert all(c.size >= cfg.min_size for c in chunks)
    assert covered_nonspace(text, chunks)
