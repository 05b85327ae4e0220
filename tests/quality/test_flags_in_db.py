"""Flags on stored pairs: assessment as batches are saved, project-wide duplicates, re-scoring, calibration."""

from __future__ import annotations

import re
import time
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.quality.card import article, outputs
from tests.quality.test_filters import PARAPHRASES
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import Generation, GenerationRun, PairStatus, QAPair
from workbench.jobs import JobStatus
from workbench.quality.filters import TERM_BAND, question_bands
from workbench.quality.models import PairFlag, QuestionBand, ScoringJob
from workbench.quality.selectors import flag_calibration
from workbench.quality.services import pairs_assess, scoring_job_create
from workbench.review.services import ReviewInput, pair_lease, pair_review


def make_pairs(project, raws, *, chunk_text=None, finish="stop"):
    doc, _ = SourceDocument.objects.get_or_create(
        project=project, content_hash="card", defaults={"text": article(), "title": "총선"}
    )
    chunk, _ = Chunk.objects.get_or_create(
        document=doc,
        chunking_key="k",
        index=0,
        defaults={"text": chunk_text or article(), "start": 0, "end": len(article()), "size": 1},
    )
    run = GenerationRun.objects.create(project=project)
    pairs = []
    for i, raw in enumerate(raws):
        g = Generation.objects.create(run=run, chunk=chunk, sample_index=i, raw_text=raw, finish_reason=finish)
        from workbench.generation.parsing import parse_output

        p = parse_output(raw)
        question, answer = p.question or "", p.answer or ""
        pairs.append(
            QAPair.objects.create(
                project=project,
                chunk=chunk,
                generation=g,
                question=question,
                answer=answer,
                original_question=question,
                original_answer=answer,
            )
        )
    return pairs


def test_card_outputs_flagged_in_the_database(project):
    pairs = make_pairs(project, outputs())
    pairs_assess(pair_ids=[p.pk for p in pairs])
    flags = {p.pk: sorted(QAPair.objects.get(pk=p.pk).flags) for p in pairs}
    assert flags[pairs[1].pk] == ["echo", "malformed"]  # finish reason "stop" here: not truncated
    assert all(not {"echo", "malformed", "truncated"} & set(flags[p.pk]) for p in pairs if p.pk != pairs[1].pk)
    echo = PairFlag.objects.get(pair=pairs[1], name="echo")
    assert echo.severity == "reject" and echo.details["spans"] and "question copies" in echo.reason


def test_duplicates_across_the_project_flag_the_later_pair(project):
    first = make_pairs(project, ["[[Q]] 프랑스 총선에서 1당이 된 정당은 어디인가요?\n[[A]] 신민중전선입니다."])
    pairs_assess(pair_ids=[p.pk for p in first])
    later = make_pairs(
        project,
        [
            "[[Q]] 프랑스 총선에서 1당이 된 정당은 어디인가요\n[[A]] NFP입니다.",
            "[[Q]] 마크롱 대통령의 정당은 몇 석을 얻었나요?\n[[A]] 168석입니다.",
        ],
    )
    pairs_assess(pair_ids=[p.pk for p in later])
    assert QAPair.objects.get(pk=first[0].pk).flags == []
    assert QAPair.objects.get(pk=later[0].pk).flags == ["duplicate"]
    assert QAPair.objects.get(pk=later[1].pk).flags == []
    flag = PairFlag.objects.get(pair=later[0], name="duplicate")
    assert flag.details["similar_to"] == first[0].pk and flag.severity == "warning"


def pairs_in_own_chunks(project, questions, *, start=0):
    """One pair per question, each from a chunk of its own (so only the project-wide search can find duplicates)."""
    from workbench.generation.parsing import parse_output

    doc, _ = SourceDocument.objects.get_or_create(
        project=project, content_hash="many", defaults={"text": article(), "title": "총선"}
    )
    run = GenerationRun.objects.create(project=project)
    pairs = []
    for i, question in enumerate(questions, start=start):
        chunk = Chunk.objects.create(document=doc, chunking_key="k", index=i, text=article(), start=0, end=10, size=10)
        raw = f"[[Q]] {question}\n[[A]] 답입니다."
        g = Generation.objects.create(run=run, chunk=chunk, sample_index=0, raw_text=raw, finish_reason="stop")
        parsed = parse_output(raw)
        pairs.append(
            QAPair.objects.create(
                project=project,
                chunk=chunk,
                generation=g,
                question=parsed.question,
                answer=parsed.answer,
                original_question=parsed.question,
                original_answer=parsed.answer,
            )
        )
    return pairs


def test_project_wide_duplicates_in_other_chunks_within_one_call_and_across_calls(project):
    first = pairs_in_own_chunks(project, ["프랑스 총선에서 1당이 된 정당은 어디인가요?", "헌법 제1조는 무엇을 규정하나요?"])
    pairs_assess(pair_ids=[p.pk for p in first])
    later = pairs_in_own_chunks(
        project,
        [
            "프랑스 총선에서 1당이 된 정당은 어디인가요",  # a stored pair's question: found through the stored bands
            "국회의원의 임기는 몇 년인가요?",
            "국회의원의 임기는 몇 년 인가요?!",  # the pair before it in the same call: found in memory
            "대통령의 임기는 몇 년이며 중임할 수 있나요?",
        ],
        start=10,
    )
    pairs_assess(pair_ids=[p.pk for p in later])
    flags = {p.pk: QAPair.objects.get(pk=p.pk).flags for p in first + later}
    assert [flags[p.pk] for p in first] == [[], []]
    assert [flags[p.pk] for p in later] == [["duplicate"], [], ["duplicate"], []]
    assert PairFlag.objects.get(pair=later[0], name="duplicate").details["similar_to"] == first[0].pk
    assert PairFlag.objects.get(pair=later[2], name="duplicate").details["similar_to"] == later[1].pk
    assert "elsewhere in the project" in PairFlag.objects.get(pair=later[2], name="duplicate").reason
    # Re-assessing the earlier pair alone leaves it clean: only pairs with lower ids count.
    pairs_assess(pair_ids=[first[0].pk])
    assert QAPair.objects.get(pk=first[0].pk).flags == []
    # Re-assessing a later pair alone finds the same duplicate through the stored bands.
    pairs_assess(pair_ids=[later[2].pk])
    assert PairFlag.objects.get(pair=later[2], name="duplicate").details["similar_to"] == later[1].pk


def test_a_rescore_after_edits_flags_what_the_model_wrote(project, reviewer):
    # Every flag describes the model's output: a reviewer's edit of the question changes neither the duplicate flag of
    # the pair edited nor the other pairs' (the edit is compared with nothing), as it changes no echo or truncation.
    first, second, third = pairs_in_own_chunks(
        project, ["국회의원의 임기는 몇 년인가요?", "국회의원의 임기는 몇 년 인가요?!", "헌법 제1조는 무엇을 규정하나요?"]
    )
    pairs_assess(pair_ids=[first.pk, second.pk, third.pk])
    before = {p.pk: QAPair.objects.get(pk=p.pk).flags for p in (first, second, third)}
    assert before == {first.pk: [], second.pk: ["duplicate"], third.pk: []}
    for pair, question in ((second, "국회의원은 몇 번 연임할 수 있나요?"), (third, "국회의원의 임기는 몇 년인가요?")):
        assert pair_lease(project=project, reviewer=reviewer, pair_id=pair.pk)
        pair_review(
            pair_id=pair.pk,
            reviewer=reviewer,
            data=ReviewInput(decision="edit", question=question, answer="답입니다.", version=pair.version),
        )
    pairs_assess(pair_ids=[first.pk, second.pk, third.pk])
    assert {p.pk: QAPair.objects.get(pk=p.pk).flags for p in (first, second, third)} == before
    assert PairFlag.objects.get(pair=second, name="duplicate").details["similar_to"] == first.pk
    # The bands stored are the model's questions' too: a later pair asking the edited question finds nothing.
    (later,) = pairs_in_own_chunks(project, ["국회의원은 몇 번 연임할 수 있나요?"], start=10)
    pairs_assess(pair_ids=[later.pk])
    assert QAPair.objects.get(pk=later.pk).flags == []


def stored_keys(pair) -> set[tuple[int, int]]:
    return set(QuestionBand.objects.filter(pair=pair).values_list("band", "hash"))


def test_a_later_batch_finds_paraphrases_through_the_stored_keys(project):
    # First batch: one question of each paraphrase pair; its keys are stored, the same keys the in-memory index uses
    # (several term keys and near-copy keys per question).
    first = pairs_in_own_chunks(project, [a for a, _ in PARAPHRASES] + ["대통령의 임기는 몇 년인가요?"])
    pairs_assess(pair_ids=[p.pk for p in first])
    for pair in first:
        assert stored_keys(pair) == set(question_bands(pair.question)), pair.question
    assert any(sum(band == TERM_BAND for band, _ in stored_keys(p)) > 1 for p in first)
    # Later batches, in other chunks: each paraphrase is found through the stored keys alone, the same subject asked
    # another thing is not.
    later = pairs_in_own_chunks(project, [b for _, b in PARAPHRASES] + ["국회의원의 임기는 몇 년인가요?"], start=50)
    for pair in later:
        pairs_assess(pair_ids=[pair.pk])
    for earlier, pair in zip(first, later[:-1]):
        flag = PairFlag.objects.get(pair=pair, name="duplicate")
        assert flag.details["similar_to"] == earlier.pk and "elsewhere in the project" in flag.reason, pair.question
    assert QAPair.objects.get(pk=later[-1].pk).flags == []


def test_migration_rebuilds_the_bands_of_the_earlier_scheme(project):
    # Rows of the earlier scheme (one MinHash band of the terms per band number) are replaced by the keys of now, per
    # project with its term threshold; a later batch then finds its duplicates through them.
    from django.apps import apps
    from django.db import connection

    rebuild = import_module("workbench.quality.migrations.0004_question_band_keys").rebuild_question_bands
    project.filter_thresholds = {"duplicate.term_similarity": 0.6}
    project.save(update_fields=["filter_thresholds"])
    first = pairs_in_own_chunks(project, [a for a, _ in PARAPHRASES])
    QuestionBand.objects.bulk_create(
        QuestionBand(project=project, pair=p, band=b, hash=p.pk * 100 + b) for p in first for b in range(-1, 16)
    )
    rebuild(apps, SimpleNamespace(connection=connection))
    for pair in first:
        assert stored_keys(pair) == set(question_bands(pair.question, 0.6)), pair.question
    later = pairs_in_own_chunks(project, [b for _, b in PARAPHRASES], start=50)
    pairs_assess(pair_ids=[p.pk for p in later])
    assert [PairFlag.objects.get(pair=p, name="duplicate").details["similar_to"] for p in later] == [p.pk for p in first]


def test_reassessing_replaces_flags(project):
    pairs = make_pairs(project, [outputs()[1]])
    pairs_assess(pair_ids=[pairs[0].pk])
    pairs_assess(pair_ids=[pairs[0].pk])
    assert PairFlag.objects.filter(pair=pairs[0], name="echo").count() == 1


@pytest.mark.worker
def test_rescore_after_threshold_change_runs_on_a_worker(celery_worker, project):
    copy = "[[Q]] 총선 결과를 알려주세요.\n[[A]] " + article()[:170]
    pairs = make_pairs(project, [copy, outputs()[0]])
    pairs_assess(pair_ids=[p.pk for p in pairs])
    assert QAPair.objects.get(pk=pairs[0].pk).flags == []
    project.filter_thresholds = {"echo.answer_longest_span": 100}
    project.save()
    job = scoring_job_create(project=project)
    deadline = time.monotonic() + 60
    while ScoringJob.objects.get(pk=job.pk).status != JobStatus.DONE and time.monotonic() < deadline:
        time.sleep(0.2)
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 2, 2)
    assert QAPair.objects.get(pk=pairs[0].pk).flags == ["echo"]


def test_calibration_counts_reviewer_decisions(project):
    pairs = make_pairs(project, outputs())
    pairs_assess(pair_ids=[p.pk for p in pairs])
    QAPair.objects.filter(pk=pairs[1].pk).update(status=PairStatus.REJECTED)
    QAPair.objects.filter(pk=pairs[0].pk).update(status=PairStatus.APPROVED)
    QAPair.objects.filter(pk=pairs[2].pk).update(status=PairStatus.REJECTED)
    rows = {r["name"]: r for r in flag_calibration(project=project)}
    assert rows["echo"]["flagged"] == 1 and rows["echo"]["flagged_rejected_rate"] == 1.0
    assert rows["echo"]["clean_decided"] == 2 and rows["echo"]["clean_rejected_rate"] == 0.5
    assert rows["echo"]["percent"] == pytest.approx(100 / len(pairs))


def test_quality_page_shows_flag_rates_as_percentages(client, project, owner):
    pairs = make_pairs(project, outputs() * 12)  # one echo in every len(outputs()): a rate under 5%
    pairs_assess(pair_ids=[p.pk for p in pairs])
    flagged = QAPair.objects.filter(project=project, flags__contains=["echo"]).count()
    client.login(username=owner.username, password=PASSWORD)
    body = client.get(reverse("quality:page", args=[project.slug])).content.decode()
    shown = f"{flagged} ({round(100 * flagged / len(pairs), 1):g}%)"
    assert re.search(r'data-flag="echo">.*?<td>' + re.escape(shown) + "</td>", body, re.S), shown


def test_quality_page_for_members_only(client, project, reviewer, outsider, owner):
    make_pairs(project, outputs())
    client.login(username=reviewer.username, password=PASSWORD)
    body = client.get(reverse("quality:page", args=[project.slug])).content.decode()
    assert "Calibration against reviewers" in body and "Re-score all pairs" not in body
    assert client.post(reverse("quality:rescore", args=[project.slug])).status_code == 403
    client.login(username=outsider.username, password=PASSWORD)
    assert client.get(reverse("quality:page", args=[project.slug])).status_code == 404
    assert client.get(reverse("quality:job", args=[project.slug])).status_code == 404
    client.login(username=owner.username, password=PASSWORD)
    assert client.post(reverse("quality:rescore", args=[project.slug])).status_code == 302
