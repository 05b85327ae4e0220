"""Each filter on its own, and properties that hold for any output."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.generation.parsing import parse_output
from workbench.quality.filters import (
    _KGRAM,
    _LOOP,
    FLAG_NAMES,
    NEAR_BAND,
    TERM_BAND,
    DuplicateIndex,
    FilterConfig,
    _clause_loop,
    _clause_loops,
    _loops,
    _repeated_share,
    _source_index,
    assess,
    copied_spans,
    question_bands,
    question_similarity,
    term_keys,
)
from workbench.quality.korean import _SENTENCE, MAX_TERMS, numeric_facts, question_terms, term_similarity

SOURCE = (
    "서울 지하철은 1974년 8월 15일 서울역과 청량리역 사이 약 7.8킬로미터 구간의 1호선이 개통되면서 시작되었다. "
    "이후 도시가 빠르게 커지고 인구가 늘어나면서 노선이 계속 확장되었고, 1980년대에는 순환선인 2호선과 3호선, 4호선이 차례로 문을 열었다. "
    "서울 지하철은 교통카드 하나로 버스와 지하철을 갈아탈 수 있는 통합 환승 할인 제도로도 잘 알려져 있다."
)
GOOD = "[[Q]] 서울 지하철 1호선은 언제 개통되었나요?\n[[A]] 1호선은 1974년 8월 15일에 서울역과 청량리역 사이 구간으로 개통되었습니다."


def names(raw, finish_reason="stop", source=SOURCE, cfg=None):
    return assess(source, raw, finish_reason=finish_reason, cfg=cfg).flag_names


def test_good_pair_is_clean():
    assert names(GOOD) == [] and names(GOOD, None) == []


def test_malformed_variants():
    assert names("[[Q]] 질문만 있습니다?") == ["malformed"]
    assert names("질문 없이 답만 있습니다.") == ["malformed"]
    assert names("[[Q]] 질문입니까?\n[[A]]   ") == ["malformed"]
    assert names("[[Q]]\n[[A]] 답입니다.") == ["malformed"]
    # Bytes that decode to no character: the pair parses, its text is broken.
    broken = assess(SOURCE, "[[Q]] 서울 지하철 1호선은 언제 개통되었\ufffd요?\n[[A]] 1974년 8월 15일에 개통되\ufffd\ufffd습니다.")
    assert broken.flag_names == ["malformed"] and "U+FFFD, 3" in broken.flags[0].reason
    assert "question and the answer" in broken.flags[0].reason


def test_tolerated_formats():
    assert parse_output("\n\n  ［［Q］］ 질문인가요?\n［［A］］ 답입니다.<|eot_id|>").ok
    assert parse_output("[[ Q ]] 질문인가요? [[A]] 답입니다.</s>").answer == "답입니다."
    assert parse_output("[[Q]]] 질문인가요?\n[[A]]] 답입니다.") == parse_output("[[Q]] 질문인가요?\n[[A]] 답입니다.")
    assert parse_output("[[Q]] 첫 질문?\n[[A]] 첫 답.\n[[Q]] 둘째 질문?\n[[A]] 둘째 답.").answer == "첫 답."


def test_truncated_by_finish_reason_only_when_length():
    assert "truncated" in names(GOOD, "length")
    assert "truncated" not in names(GOOD, "stop")


def test_truncated_without_finish_reason_looks_at_the_end():
    assert "truncated" in names("[[Q]] 1호선은 언제 개통되었나요?\n[[A]] 1호선은 1974년 8월 15일에 서울역과 청량", None)
    assert "truncated" in names(
        "[[Q]] 무엇이라고 했나요?\n[[A]] 그는 “유권자들이 불가능할 것으로 여겨진 승리를 만들어냈다.", None
    )
    assert "truncated" in names("[[Q]] 무엇인가요?\n[[A]] 통합 환승 할인 제도(2004년 도입된 제도이며 교통카드", None)
    assert "truncated" not in names("[[Q]] 몇 호선인가요?\n[[A]] 1호선", None)  # a short fact
    assert "truncated" not in names("[[Q]] 무엇인가요?\n[[A]] 통합 환승 할인 제도입니다", None)  # ends a sentence, no period


def test_echoed_question_answer_copy_and_repeated_question():
    echo_q = "[[Q]] " + SOURCE[:150] + "\n[[A]] 네."
    assert "echo" in names(echo_q)
    copy_a = "[[Q]] 서울 지하철의 역사를 설명해 주세요.\n[[A]] " + SOURCE
    assert "echo" in names(copy_a)
    repeat = "[[Q]] 서울 지하철 1호선은 언제 개통되었나요?\n[[A]] 서울 지하철 1호선은 언제 개통되었나요"
    assert "echo" in names(repeat)


def test_echo_spans_map_into_the_source():
    result = assess(SOURCE, "[[Q]] 지하철 역사를 알려주세요.\n[[A]] " + SOURCE[20:260], finish_reason="stop")
    echo = next(f for f in result.flags if f.name == "echo")
    for span in echo.details["spans"]:
        assert result.answer[span["start"] : span["end"]] == SOURCE[span["source_start"] : span["source_end"]]


def test_language():
    assert "language" in names("[[Q]] When did Line 1 open?\n[[A]] It opened on 15 August 1974 between two stations.")
    assert "language" not in names("[[Q]] KTX와 SRT의 차이는 무엇인가요?\n[[A]] KTX는 코레일이, SRT는 SR이 운영합니다.")
    english = "Line 1 of the Seoul subway opened in 1974 between Seoul Station and Cheongnyangni. " * 2
    assert "language" not in names("[[Q]] When did it open?\n[[A]] In 1974.", source=english)


def test_repetition():
    loop = "[[Q]] 무엇인가요?\n[[A]] 하나이다 하나이다 하나이다 하나이다 하나이다 하나이다."
    assert "repetition" in names(loop)
    assert "repetition" not in names(GOOD)


def test_a_short_loop_in_a_long_answer_is_found_at_the_threshold():
    """Four times in a row (the default `repetition.min_repeats`) in an answer long enough that the whole does not
    compress like a loop; three times is not a loop."""
    prose = "이 문서는 서울의 교통 체계를 설명합니다. 지하철과 버스가 함께 운영되며 환승 할인이 적용됩니다."
    after = "출퇴근 시간에는 배차 간격이 줄어들고, 심야에는 올빼미 버스가 주요 거점을 오갑니다."
    four = f"[[Q]] 서울의 교통은 어떤가요?\n[[A]] {prose} 도시를 도시를 도시를 도시를 연결하는 노선이 많습니다. {after}"
    assert "repetition" in names(four)
    three = four.replace("도시를 도시를 도시를 도시를", "도시를 도시를 도시를")
    assert "repetition" not in names(three)
    phrase = four.replace("도시를 도시를 도시를 도시를", "서울의 도시를 서울의 도시를 서울의 도시를 서울의 도시를")
    assert "repetition" in names(phrase)
    strict = FilterConfig.from_overrides({"repetition.min_repeats": 5})
    result = assess(SOURCE, four, finish_reason="stop", cfg=strict)
    assert "repetition" not in [f.name for f in result.flags]


def test_a_clause_said_three_times_in_a_row_is_a_loop():
    clause = "대통령은 국가의 원수이며 외국에 대하여 국가를 대표한다."
    looped = f"[[Q]] 대통령의 지위는?\n[[A]] 대통령의 지위는 다음과 같다. {clause} {clause} {clause} 이상이다."
    (flag,) = [f for f in assess(SOURCE, looped, finish_reason="stop").flags if f.name == "repetition"]
    assert "is repeated 3 times in a row" in flag.reason and "국가의 원수" in flag.reason
    # Twice is a restatement; a word three times is emphasis (the test above); both are settings.
    assert "repetition" not in names(looped.replace(f"{clause} {clause} {clause}", f"{clause} {clause}"))
    lenient = FilterConfig.from_overrides({"repetition.min_clause_repeats": 4})
    assert "repetition" not in [f.name for f in assess(SOURCE, looped, finish_reason="stop", cfg=lenient).flags]
    longer = FilterConfig.from_overrides({"repetition.min_clause_chars": 40})
    assert "repetition" not in [f.name for f in assess(SOURCE, looped, finish_reason="stop", cfg=longer).flags]


def test_clause_settings_below_their_floor_still_end():
    # 0 characters or one repeat would match nothing at every position: the search holds to 2 and 2.
    clause = "대통령은 국가의 원수이며 외국에 대하여 국가를 대표한다."
    looped = f"[[Q]] 지위는?\n[[A]] {clause} {clause} {clause} 이상이다."
    for overrides in ({"repetition.min_clause_chars": 0}, {"repetition.min_clause_repeats": 1, "repetition.min_clause_chars": 0}):
        flags = assess(SOURCE, looped, finish_reason="stop", cfg=FilterConfig.from_overrides(overrides)).flags
        assert "repetition" in [f.name for f in flags], overrides


@given(st.lists(st.sampled_from(["국가의", "원수", "대통령은", "가", "나다", "헌법을", "."]), max_size=60), st.integers(3, 12))
@settings(max_examples=300, deadline=None)
def test_the_clause_search_finds_the_matches_of_the_full_regex_search(words, chars):
    text = " ".join(words)
    assert [m.span() for m in _clause_loops(text, chars, 3)] == [m.span() for m in _clause_loop(chars, 3).finditer(text)]


def test_thresholds_and_severity_are_project_settings():
    copy_a = "[[Q]] 서울 지하철의 역사를 설명해 주세요.\n[[A]] " + SOURCE[:170]
    assert "echo" not in names(copy_a)
    strict = FilterConfig.from_overrides({"echo.answer_longest_span": 100, "severity.echo": 0})
    result = assess(SOURCE, copy_a, finish_reason="stop", cfg=strict)
    assert [f.severity for f in result.flags if f.name == "echo"] == ["warning"]


def test_duplicate_index_finds_paraphrases_not_different_questions():
    index = DuplicateIndex(0.7)
    assert index.check_and_add(1, "서울 지하철 1호선은 언제 개통되었나요?") == (None, 0.0)
    assert index.check_and_add(2, "서울 지하철 1호선은 언제 개통되었나요??")[0] == 1  # punctuation only
    hit, sim = index.check_and_add(3, "서울 지하철의 1호선은 언제 개통되었나요?")
    assert hit in {1, 2} and sim >= 0.7
    assert index.check_and_add(4, "김치는 어떻게 발효되나요?") == (None, 0.0)


@settings(max_examples=200, deadline=None)
@given(raw=st.text(max_size=400), finish=st.sampled_from(["stop", "length", None]))
def test_any_output_is_assessed(raw, finish):
    result = assess(SOURCE, raw, finish_reason=finish)
    assert set(result.flag_names) <= set(FLAG_NAMES)
    assert set(result.scores) == set(FLAG_NAMES)
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())
    if finish == "length":
        assert "truncated" in result.flag_names


@settings(max_examples=200, deadline=None)
@given(
    q=st.text(alphabet="가나다라마바사 ?.", min_size=1, max_size=60).filter(lambda s: s.strip()),
    a=st.text(alphabet="가나다라마바사 ?.", min_size=1, max_size=60).filter(lambda s: s.strip()),
)
def test_well_formed_pairs_parse_back(q, a):
    parsed = parse_output(f"[[Q]] {q}\n[[A]] {a}")
    assert parsed.ok and parsed.question == q.strip() and parsed.answer == a.strip()


# --- paraphrased duplicates ------------------------------------------------------------------------------------------
PARAPHRASES = [
    ("헌법 개정안은 누가 발의할 수 있나요?", "헌법을 고치자는 안을 제안할 수 있는 주체는 누구인가?"),
    ("대통령의 임기는 몇 년인가요?", "대통령은 몇 년 동안 재임하나?"),
    ("국회는 법률안을 어떻게 의결하나요?", "법률안은 국회에서 어떤 방식으로 의결되나요?"),
    # A noun that says what is asked reads as the interrogative: 방법/방식/절차 as 어떻게, 시점 as 언제, 이유 as 왜,
    # 주체 as 누가.
    ("국회의원은 어떻게 선출되나요?", "국회의원을 선출하는 방법은 무엇인가요?"),
    ("어떤 절차를 거쳐 예산안이 의결되나요?", "예산안은 어떻게 의결되나요?"),
    ("조약은 언제 비준되나요?", "조약이 비준되는 시점은 언제인가요?"),
    ("왜 계엄을 선포하나요?", "계엄을 선포하는 이유는 무엇인가요?"),
    ("누가 법률안을 제출하나요?", "법률안을 제출하는 주체는 누구인가요?"),
]
DIFFERENT = [
    ("대통령의 임기는 몇 년인가요?", "국회의원의 임기는 몇 년인가요?"),
    ("헌법 개정에 대해 설명해 주세요.", "대통령 선거에 대해 설명해 주세요."),
    ("헌법 개정안은 누가 발의할 수 있나요?", "헌법 개정안은 언제 공포되나요?"),
    # One subject, another question: who against when, or a question against a request to describe.
    ("누가 법률안을 제출하나요?", "법률안은 언제 제출되나요?"),
    ("예산안은 어떻게 의결되나요?", "예산안 의결에 대해 설명해 주세요."),
    ("왜 계엄을 선포하나요?", "누가 계엄을 선포하나요?"),
]


def test_paraphrased_questions_are_duplicates():
    for first, second in PARAPHRASES:
        index = DuplicateIndex()
        index.check_and_add(1, first)
        hit, similarity = index.check_and_add(2, second)
        assert hit == 1 and similarity >= 0.7, (first, second, similarity)


def test_same_frame_or_subject_with_another_question_is_not_a_duplicate():
    for first, second in DIFFERENT:
        index = DuplicateIndex()
        index.check_and_add(1, first)
        assert index.check_and_add(2, second) == (None, 0.0), (first, second)


# --- duplicate candidates ------------------------------------------------------------------------------------------
VOCABULARY = [f"어휘{i}" for i in range(24)] + ["개정", "법률", "규정", "오", "1", "?who", "?how", "?when"]


@st.composite
def similar_term_sets(draw):
    """A term set and another made from it by dropping and adding a few terms (most pairs near the threshold)."""
    a = draw(st.frozensets(st.sampled_from(VOCABULARY), min_size=2, max_size=MAX_TERMS))
    dropped = draw(st.frozensets(st.sampled_from(sorted(a)), max_size=3))
    added = draw(st.frozensets(st.sampled_from(VOCABULARY), max_size=3))
    return a, (a - dropped) | added


@settings(max_examples=500, deadline=None)
@given(pair=similar_term_sets(), threshold=st.sampled_from([0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0]))
def test_every_pair_over_the_term_threshold_shares_a_term_key(pair, threshold):
    a, b = pair
    if term_similarity(a, b) >= threshold:
        assert set(term_keys(a, threshold)) & set(term_keys(b, threshold)), (sorted(a), sorted(b))


def test_questions_sharing_one_term_of_three_share_no_key():
    # The cost of the earlier MinHash bands of 4 rows: over sets of 2-5 terms, two questions sharing one term of three
    # were candidates about one time in five. The term keys of such questions differ.
    a, b = frozenset({"헌법", "개정", "?who"}), frozenset({"헌법", "예산", "?who"})
    assert not set(term_keys(a, 0.7)) & set(term_keys(b, 0.7))
    assert {TERM_BAND, NEAR_BAND} <= {band for band, _ in question_bands("헌법 개정안은 누가 발의할 수 있나요?")}


class CountingIndex(DuplicateIndex):
    compared = 0

    def similarity(self, mine, other, **kwargs):
        self.compared += 1
        return super().similarity(mine, other, **kwargs)


SUBJECTS = ["헌법", "국회", "대통령", "법원", "예산", "조약", "계엄", "선거", "국민", "교육", "감사원", "외교"]
FRAMES = ["{a}의 {b}에 대해 설명해 주세요.", "{a} 및 {b}의 관계는 무엇인가요?", "{a} 및 {b}의 차이는 무엇인가요?"]


def test_questions_in_one_frame_about_other_subjects_are_rarely_compared():
    # 198 questions of two or three terms, each sharing its frame and one subject with 20 others, or both subjects in
    # another frame with 2 (similarity 1/3, 0.5 or 0.67): none is a candidate of another, where 16 bands of 4 MinHash
    # rows made a pair at 1/3 a candidate with probability 0.18, at 0.5 with 0.64.
    questions = [f.format(a=a, b=b) for f in FRAMES for a, b in combinations(SUBJECTS, 2)]
    assert {len(question_terms(q)) for q in questions} == {2, 3}
    index = CountingIndex()
    assert all(index.check_and_add(i, q) == (None, 0.0) for i, q in enumerate(questions))
    assert index.compared == 0


def test_the_index_finds_the_most_similar_earlier_question_as_comparing_all_pairs_does():
    questions = [q for pair in PARAPHRASES + DIFFERENT for q in pair]
    questions += [q.replace("?", "요?") for q in questions[:6]] + [f.format(a="헌법", b="개정") for f in FRAMES]
    index = DuplicateIndex()
    for i, question in enumerate(questions):
        scores = [question_similarity(question, earlier) for earlier in questions[:i]]
        best = max(scores, default=0.0)
        hit, similarity = index.check_and_add(i, question)
        assert similarity == best, question
        assert hit == (scores.index(best) if best else None) or question_similarity(question, questions[hit]) == best


def test_a_near_copy_asking_with_another_interrogative_is_found_by_its_characters():
    # Term similarity 0 (one asks who), trigram similarity 0.79: a duplicate at a trigram threshold of 0.75, found
    # through the term set left one term short.
    first = "서울 지하철 1호선이 개통된 구간과 그 길이, 개통 연도를 알려 주세요."
    second = "서울 지하철 1호선이 개통된 구간과 그 길이, 개통 연도를 누가 알려 주세요."
    index = DuplicateIndex(0.75)
    index.check_and_add(1, first)
    hit, similarity = index.check_and_add(2, second)
    assert hit == 1 and 0.75 <= similarity < 0.8
    assert {b for b, _ in set(question_bands(first)) & set(question_bands(second))} == {NEAR_BAND}


def test_trigram_bands_are_datasketchs_own_minhash_of_the_seed():
    # Stored bands of existing projects must keep matching: the permutations made once are the ones MinHash draws
    # from its seed for each question.
    from datasketch import MinHash

    from workbench.quality.filters import TRIGRAM_BANDS, TRIGRAM_ROWS, _key_hash, shingles

    for question in (SOURCE, "무엇인가요?", "그것에 대해 설명해 주세요."):  # a passage, questions without terms
        grams = [("#" + g).encode() for g in shingles(question)]
        expected = MinHash.bulk([grams], num_perm=TRIGRAM_BANDS * TRIGRAM_ROWS)[0].hashvalues
        bands = {b: h for b, h in question_bands(question) if 0 <= b < TRIGRAM_BANDS}
        assert len(bands) == TRIGRAM_BANDS
        assert bands == {
            b: _key_hash("g", expected[b * TRIGRAM_ROWS : (b + 1) * TRIGRAM_ROWS].tobytes().hex()) for b in range(TRIGRAM_BANDS)
        }


# --- answers not supported by the source -------------------------------------------------------------------------------
LAW = (
    "제70조 대통령의 임기는 5년으로 하며, 중임할 수 없다. 제128조 ① 헌법개정은 국회재적의원 과반수 또는 대통령의 발의로 "
    "제안된다. 이 법은 2,000명 이상의 사업장에 적용하며, 부담금은 기준액의 1.5배로 한다. 이 법은 1988. 2. 25.부터 "
    "시행한다. 위원회는 위원장 1명과 위원 두 명으로 구성하고, OECD 기준을 따른다. 김영삼 의원이 서울특별시에서 발의하였다."
)
SUPPORTED = [
    "[[Q]] 대통령의 임기는 몇 년인가요?\n[[A]] 대통령의 임기는 5년이며, 중임할 수 없습니다.",
    "[[Q]] 대통령은 몇 년 동안 재임하나요?\n[[A]] 5년 동안 재임하고 다시 대통령이 될 수는 없습니다.",
    "[[Q]] 적용 대상은?\n[[A]] 2000명 이상의 사업장에 적용됩니다.",
    "[[Q]] 부담금은 얼마인가요?\n[[A]] 기준액의 1.5배입니다.",
    "[[Q]] 언제부터 시행되나요?\n[[A]] 1988년 2월 25일부터 시행됩니다.",
    "[[Q]] 위원회는 어떻게 구성되나요?\n[[A]] 위원장 한 명과 위원 2명으로 구성되며 OECD 기준을 따릅니다.",
    "[[Q]] 누가 발의했나요?\n[[A]] 김영삼 의원이 서울특별시에서 발의했습니다.",
]
UNSUPPORTED = [
    ("[[Q]] 대통령의 임기는 몇 년인가요?\n[[A]] 대통령의 임기는 4년이며, 중임할 수 없습니다.", "4년"),
    ("[[Q]] 적용 대상은?\n[[A]] 3,000명 이상의 사업장에 적용됩니다.", "3,000명"),
    ("[[Q]] 언제부터 시행되나요?\n[[A]] 1989년 2월 25일부터 시행됩니다.", "1989년"),
    ("[[Q]] 위원회는 어떤 기준을 따르나요?\n[[A]] WHO 기준을 따릅니다.", "WHO"),
    ("[[Q]] 누가 발의했나요?\n[[A]] 김대중 의원이 서울특별시에서 발의했습니다.", "김대중"),
    ("[[Q]] 어디에서 발의했나요?\n[[A]] 김영삼 의원이 부산광역시에서 발의했습니다.", "부산광역시"),
]


def test_answers_whose_facts_are_in_the_source_stay_clean():
    for raw in SUPPORTED:
        assert "unsupported" not in names(raw, source=LAW), raw


def test_unsupported_facts_are_flagged_with_their_positions():
    for raw, fact in UNSUPPORTED:
        result = assess(LAW, raw, finish_reason="stop")
        flag = next((f for f in result.flags if f.name == "unsupported"), None)
        assert flag is not None and flag.severity == "warning", raw
        missing = flag.details["missing"]
        assert any(fact in m["text"] or m["text"] in fact for m in missing), missing
        for m in missing:
            assert result.answer[m["start"] : m["end"]] == m["text"]
        assert fact in flag.reason and 0 < result.scores["unsupported"] <= 1


def test_unsupported_thresholds_are_project_settings():
    raw = UNSUPPORTED[0][0]
    lenient = FilterConfig.from_overrides({"unsupported.max_missing_facts": 1, "severity.unsupported": 1})
    assert "unsupported" not in names(raw, source=LAW, cfg=lenient)
    strict = FilterConfig.from_overrides({"severity.unsupported": 1})
    assert [f.severity for f in assess(LAW, raw, cfg=strict).flags if f.name == "unsupported"] == ["reject"]


# --- what a question asks, and numbers that state another fact -------------------------------------------------------
def test_passages_are_compared_by_their_characters_only():
    # Two overlapping excerpts share most words; as questions they are echoes, not reworded duplicates.
    first = SOURCE[:170] + "?"
    second = SOURCE[60:] + "?"
    assert question_terms(first) and len(question_terms(first)) > MAX_TERMS
    assert term_similarity(question_terms(first), question_terms(second)) == 0.0


ARTICLES = (
    "제111조 ① 헌법재판소는 다음 사항을 관장한다.\n제112조 ① 헌법재판소 재판관의 임기는 6년으로 하며, 법률이 정하는 "
    "바에 의하여 연임할 수 있다.\n제105조 ① 대법원장의 임기는 6년으로 하며, 중임할 수 없다.\n"
    "제70조 대통령의 임기는 5년으로 한다."
)


def test_a_number_of_the_source_stating_another_fact_is_unsupported():
    # 5년 is in the source, as the president's term; the sentence the answer rewords says 6년.
    result = assess(ARTICLES, "[[Q]] 대법원장의 임기는?\n[[A]] 대법원장의 임기는 5년으로 하며, 중임할 수 없습니다.")
    assert "unsupported" in result.flag_names
    assert [m["text"] for m in next(f for f in result.flags if f.name == "unsupported").details["missing"]] == ["5년"]
    # The article number too: 제111조 exists, but not as this article's.
    assert "unsupported" in names(
        "[[Q]] 임기는?\n[[A]] 제111조 ① 헌법재판소 재판관의 임기는 6년으로 하며, 연임할 수 있습니다.", source=ARTICLES
    )
    for clean in (
        "[[Q]] 대법원장의 임기는?\n[[A]] 대법원장의 임기는 6년이고 중임할 수 없습니다.",
        "[[Q]] 대통령의 임기는?\n[[A]] 대통령의 임기는 5년입니다.",
        # One sentence of the answer joins two of the source's: each clause is checked against its own.
        "[[Q]] 임기는?\n[[A]] 대법원장의 임기는 6년으로 하며, 대통령의 임기는 5년으로 합니다.",
        "[[Q]] 재판관의 임기는?\n[[A]] 제112조에 따르면 헌법재판소 재판관의 임기는 6년이며 연임할 수 있습니다.",
    ):
        assert "unsupported" not in names(clean, source=ARTICLES), clean


CONSTITUTION = (
    "제66조 ① 대통령은 국가의 원수이며, 외국에 대하여 국가를 대표한다.\n"
    "② 대통령은 국가의 독립·영토의 보전·국가의 계속성과 헌법을 수호할 책무를 진다.\n"
    "제48조 국회는 의장 1인과 부의장 2인을 선출한다. 국회의장은 국회를 대표하고 의사를 정리한다.\n"
    "제9조 국가는 전통문화의 계승·발전과 민족문화의 창달에 노력하여야 한다."
)


def test_a_noun_of_the_chunk_in_another_sentences_place_is_unsupported():
    # Every word is in the chunk; 국회의장 is not the one the sentence restated says represents the state.
    result = assess(
        CONSTITUTION, "[[Q]] 국가의 원수는 누구인가요?\n[[A]] 국회의장은 국가의 원수이며, 외국에 대하여 국가를 대표합니다."
    )
    (flag,) = [f for f in result.flags if f.name == "unsupported"]
    assert [(m["text"], m["kind"]) for m in flag.details["missing"]] == [("국회의장", "misplaced")]
    assert result.answer[flag.details["missing"][0]["start"] : flag.details["missing"][0]["end"]] == "국회의장"
    assert flag.reason == "Not in the source's sentence it restates: “국회의장”."
    # In the middle of a sentence, across its punctuation (계승·발전) and with the ending reworded.
    swapped = "[[Q]] 국가는 무엇에 노력하나요?\n[[A]] 제9조 국가는 국회의 계승·발전과 민족문화의 창달에 노력해야 합니다."
    assert [m["text"] for f in assess(CONSTITUTION, swapped).flags for m in f.details.get("missing", [])] == ["국회"]


def test_nouns_of_other_sentences_joined_or_asked_about_stay_clean():
    for clean in (
        "[[Q]] 대통령은 어떤 지위인가요?\n[[A]] 대통령은 국가의 원수이며, 외국에 대하여 국가를 대표합니다.",
        # Two sentences in one answer, each clause restating its own.
        "[[Q]] 누가 대표하나요?\n[[A]] 대통령은 외국에 대하여 국가를 대표하고, 국회의장은 국회를 대표합니다.",
        # A fact of another sentence joined in with its own words: its neighbours are not the restated sentence's.
        "[[Q]] 대통령은?\n[[A]] 대통령은 국가의 원수이며 국회의장과 달리 외국에 대하여 국가를 대표합니다.",
        # The question named the noun the answer brings in.
        "[[Q]] 국회의장과 대통령 중 국가의 원수는?\n[[A]] 국회의장이 아니라 대통령이 국가의 원수이며, 외국에 대하여 국가를 대표합니다.",
        "[[Q]] 제9조는 무엇을 정하나요?\n[[A]] 문서에 따르면, 국가는 전통문화의 계승·발전과 민족문화의 창달에 노력하여야 합니다.",
    ):
        assert "unsupported" not in names(clean, source=CONSTITUTION), clean


def test_a_noun_the_chunk_lacks_in_place_of_the_sentences_own_is_a_strict_fact():
    # One common noun missing used to count only beside others; standing in for the sentence's 대통령 it is a wrong title.
    result = assess(CONSTITUTION, "[[Q]] 국가의 원수는?\n[[A]] 국무총리는 국가의 원수이며, 외국에 대하여 국가를 대표합니다.")
    (flag,) = [f for f in result.flags if f.name == "unsupported"]
    assert [(m["text"], m["kind"]) for m in flag.details["missing"]] == [("국무총리", "substituted")]
    assert flag.reason == "Not found in the source: “국무총리”."
    # A synonym in the sentence's place (책무 / 의무, 국가 / 나라) is the same fact; a noun added beside the sentence's
    # words, with no word of the sentence in its place, is judged as a common noun, as before.
    for clean in (
        "[[Q]] 책무는?\n[[A]] 대통령은 국가의 독립·영토의 보전·국가의 계속성과 헌법을 수호할 의무를 집니다.",
        "[[Q]] 대통령은?\n[[A]] 대통령은 나라의 원수이며, 외국에 대하여 국가를 대표합니다.",
        "[[Q]] 대통령은?\n[[A]] 대통령은 국가의 원수이며, 외국에 대하여 공식적으로 국가를 대표합니다.",
    ):
        assert "unsupported" not in names(clean, source=CONSTITUTION), clean


def test_short_answers_with_a_wrong_title_are_caught_however_the_sentences_tie():
    one = "제66조 ① 대통령은 국가의 원수이며, 외국에 대하여 국가를 대표한다."
    two = one + "\n제86조 ① 국무총리는 국회의 동의를 얻어 대통령이 임명한다."
    for source, answer, kind in (
        (one, "국무총리는 국가의 원수이다.", "substituted"),  # one sentence, the noun nowhere in it
        (one, "국무총리가 국가의 원수이다.", "substituted"),
        # The clause holds as many pairs of the second sentence (국무총리는): the rest of it restates the first.
        (two, "국무총리는 국가의 원수이다.", "misplaced"),
    ):
        flags = [f for f in assess(source, f"[[Q]] 국가의 원수는 누구인가?\n[[A]] {answer}").flags if f.name == "unsupported"]
        assert [(m["text"], m["kind"]) for f in flags for m in f.details["missing"]] == [("국무총리", kind)], answer
    for clean in ("대통령이 국가의 원수입니다.", "대통령은 국가의 원수이고 국회의 동의를 얻어 국무총리를 임명합니다."):
        assert "unsupported" not in names(f"[[Q]] 누구인가?\n[[A]] {clean}", source=two), clean


def test_a_number_stated_as_another_fact_is_named_as_in_the_wrong_place():
    result = assess(ARTICLES, "[[Q]] 대법원장의 임기는?\n[[A]] 대법원장의 임기는 5년이다.")
    (flag,) = [f for f in result.flags if f.name == "unsupported"]
    assert flag.reason == "Not in the source's sentence it restates: “5년”."


CABINET = (
    "제88조 ① 국무회의는 정부의 권한에 속하는 중요한 정책을 심의한다.\n"
    "② 국무회의는 대통령·국무총리와 15인 이상 30인 이하의 국무위원으로 구성한다.\n"
    "③ 대통령은 국무회의의 의장이 되고, 국무총리는 부의장이 된다.\n"
    "제54조 ① 국회는 국가의 예산안을 심의·확정한다. ② 정부는 예산안을 편성하여 국회에 제출하고, 국회는 이를 의결한다."
)


def test_a_noun_of_the_sentence_in_another_nouns_role_is_unsupported():
    # Every word is the sentence's own; the sentence makes 대통령 the chair and 국무총리 the vice-chair.
    for answer, swapped in (
        ("국무총리는 국무회의의 의장이 됩니다.", ["국무총리"]),
        ("국무총리는 국무회의의 의장이 되고, 대통령은 부의장이 됩니다.", ["국무총리", "대통령"]),
        ("정부는 예산안을 편성하여 국회에 제출합니다.", []),
        ("국회는 예산안을 편성하여 국회에 제출합니다.", ["국회"]),
    ):
        flags = [f for f in assess(CABINET, f"[[Q]] 누가?\n[[A]] {answer}").flags if f.name == "unsupported"]
        assert [m["text"] for f in flags for m in f.details["missing"] if m["kind"] == "swapped"] == swapped, answer
        if swapped:
            assert flags[0].reason.startswith(
                "In another's role in the sentence it restates: “국무총리”" if len(swapped) > 1 else "In another's role"
            )
    for clean in (
        "대통령은 국무회의의 의장이 되고, 국무총리는 부의장이 됩니다.",
        "국무총리는 부의장이 되고, 대통령은 국무회의의 의장이 됩니다.",  # the clauses in the other order
        "국회는 예산안을 심의하여 확정합니다.",  # the sentence's 이를, named
        "국무회의의 의장은 대통령이고 부의장은 국무총리입니다.",
    ):
        assert "unsupported" not in names(f"[[Q]] 누가?\n[[A]] {clean}", source=CABINET), clean


SUBWAY = "서울 지하철 2호선은 1980년대에 개통했다. 그 노선은 21세기에 연장되었다."


def test_a_counter_that_begins_another_noun_is_read_with_it():
    # "2호선" is a line, not article 2; "1980년대" a decade, not the year 1980; "21세기" a century, not an age.
    assert [(v, u, SUBWAY[s:e]) for v, u, s, e in numeric_facts(SUBWAY)] == [
        ("2", "호선", "2호선"),
        ("1980", "년대", "1980년대"),
        ("21", "세기", "21세기"),
    ]
    assert "unsupported" not in names("[[Q]] 2호선은?\n[[A]] 2호선은 1980년대에 개통했습니다.", source=SUBWAY)
    # The mark covers the whole fact, and names it once.
    flags = [f for f in assess(SUBWAY, "[[Q]] 언제?\n[[A]] 4호선은 1990년대에 개통했습니다.").flags if f.name == "unsupported"]
    assert [m["text"] for f in flags for m in f.details["missing"]] == ["4호선", "1990년대"]
    assert flags[0].reason == "Not found in the source: “4호선”, “1990년대”."


def test_misplaced_nouns_need_a_sentence_to_be_misplaced_from():
    # One sentence: a noun missing from it is missing from the chunk, judged as before.
    one = "대통령은 국가의 원수이며, 외국에 대하여 국가를 대표한다."
    assert "unsupported" not in names(
        "[[Q]] 대통령은?\n[[A]] 대통령은 국가의 원수이며, 외국에 대하여 국가를 대표합니다.", source=one
    )


def test_sentences_end_at_a_period_outside_numbers_and_dates():
    text = "부담금은 기준액의 1.5배로 한다. 이 법은 1988. 2. 25.부터 시행한다.\n부칙"
    assert [m.group() for m in _SENTENCE.finditer(text)] == [
        "부담금은 기준액의 1.5배로 한다.",
        "이 법은 1988. 2. 25.부터 시행한다.",
        "부칙",
    ]


def test_general_verb_and_noun_paraphrases_are_one_term():
    for first, second in [
        ("그는 언제 태어났나요?", "그의 출생 시점은 언제인가요?"),
        ("혼인할 수 있는 나이는 몇 살인가요?", "결혼할 수 있는 연령은 몇 살인가요?"),
        ("대통령이 국군을 통수하는 근거는 무엇인가요?", "대통령이 국군을 지휘하는 근거는 무엇인가요?"),
    ]:
        assert term_similarity(question_terms(first), question_terms(second)) >= 0.7, (first, second)


# --- the fast paths against plain versions ------------------------------------------------------------------------------
def plain_copied_spans(text, source, *, min_span):
    """`copied_spans` as a scan of every position of the text, extended character by character."""
    if len(text) < _KGRAM or len(source) < _KGRAM:
        return []
    index = _source_index(source)
    spans, i = [], 0
    while i <= len(text) - _KGRAM:
        pos = index.get(text[i : i + _KGRAM])
        if pos is None:
            i += 1
            continue
        end, src_end = i + _KGRAM, pos + _KGRAM
        while end < len(text) and src_end < len(source) and text[end] == source[src_end]:
            end += 1
            src_end += 1
        if end - i >= min_span:
            spans.append((i, end, pos))
            i = end
        else:
            i += 1
    return spans


@st.composite
def text_and_source(draw):
    """A source over a small alphabet (so that runs recur) and a text of pieces copied from it and other characters."""
    alphabet = draw(st.sampled_from(["ab", "abc ", "가나다 .", "abcdefgh", "가나다라마바사아 \n"]))
    source = draw(st.text(alphabet, max_size=300))
    pieces = []
    for start, length, noise in draw(
        st.lists(st.tuples(st.integers(0, 300), st.integers(0, 90), st.text(alphabet, max_size=20)), max_size=6)
    ):
        pieces += [source[start : start + length], noise]
    return "".join(pieces), source


@settings(max_examples=500, deadline=None)
@given(pair=text_and_source(), min_span=st.sampled_from([1, 8, 12, 13, 20, 21, 40, 180]))
def test_copied_spans_are_those_of_a_scan_of_every_position(pair, min_span):
    text, source = pair
    assert copied_spans(text, source, min_span=min_span) == plain_copied_spans(text, source, min_span=min_span)


@settings(max_examples=500, deadline=None)
@given(
    unit=st.text("ab가 \n", min_size=1, max_size=45),
    repeats=st.integers(0, 6),
    around=st.tuples(st.text("ab가나 \n\u3000", max_size=60), st.text("ab가나 \n\u3000", max_size=60)),
    spaces=st.text(" \n\u3000", max_size=45),
)
def test_the_loop_search_finds_the_matches_of_the_full_regex_search(unit, repeats, around, spaces):
    text = around[0] + (unit + spaces) * repeats + around[1]
    assert [m.span() for m in _loops(text)] == [m.span() for m in _LOOP.finditer(text)]


@settings(max_examples=500, deadline=None)
@given(
    answer=st.text("가나다라 ab.\n", max_size=80),
    question=st.text("가나다라 ab.\n", max_size=80),
    threshold=st.sampled_from([0.0, 0.3, 0.5, 0.8, 0.95, 1.0]),
)
def test_the_repeated_share_is_exact_wherever_it_can_reach_the_threshold(answer, question, threshold):
    a, q = " ".join(answer.split()), " ".join(question.split())
    a_grams = {a[i : i + 3] for i in range(len(a) - 2)}
    share = len(a_grams & {q[i : i + 3] for i in range(len(q) - 2)}) / len(a_grams) if a_grams else 0.0
    found = _repeated_share(answer, question, threshold)
    assert found == share or (found == 0.0 and share < threshold)


def test_the_unsupported_reason_names_each_fact_once_and_says_how_many_more():
    source = "서울은 대한민국의 수도이다. 한강이 도시를 가로지른다."
    places = ["부산", "대구", "광주", "대전", "울산", "수원", "창원", "청주", "전주", "포항"]
    answer = "인천과 인천 사이, " + ", ".join(places) + "이 그 도시들이다. 인천은 항구이다."
    (flag,) = [
        f for f in assess(source, f"[[Q]] 도시들은?\n[[A]] {answer}", finish_reason="stop").flags if f.name == "unsupported"
    ]
    named = flag.reason.removeprefix("Not found in the source: ").split(" and ")[0].split(", ")
    assert len(named) == len(set(named)) == 8 and named[0] == "“인천”"
    assert flag.reason.endswith(" more.") and len(flag.details["missing"]) > 8


def test_a_one_syllable_verb_of_a_synonym_group_joins_it_only_as_a_verb():
    """살- (to live) is one term with 거주; the 살 of an age is not, so "몇 살" does not meet "어디에 거주"."""
    assert "거주" in question_terms("그는 어디에 살고 있나요?") and "거주" in question_terms("그는 어디에 거주하나요?")
    assert "거주" not in question_terms("그는 몇 살인가요?")
    index = DuplicateIndex(0.7)
    index.check_and_add(1, "그는 몇 살인가요?")
    assert index.check_and_add(2, "그는 어디에 거주하나요?") == (None, 0.0)
