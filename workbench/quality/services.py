"""Writes of quality flags: assessing pairs as batches are saved, and re-scoring a project after a threshold change."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import connection, transaction

from workbench.generation.models import QAPair
from workbench.jobs import job_run, job_send_on_commit
from workbench.projects.models import Project
from workbench.quality.filters import (
    DuplicateIndex,
    FilterConfig,
    assess,
    duplicate_flag,
    question_bands,
    question_similarity,
)
from workbench.quality.models import (
    EmbeddingDispatch,
    FlagName,
    PairFlag,
    QuestionBand,
    QuestionEmbedding,
    ScoringJob,
    Severity,
)

log = logging.getLogger(__name__)


def _the_models(generation_id: int | None, question: str, original_question: str) -> str:
    """The question the model wrote. Flags describe the model's output and a reviewer's edit does not change them,
    duplicates included: a re-score after edits compares the questions the first scoring compared."""
    return original_question if generation_id else question


def model_question(pair: QAPair) -> str:
    return _the_models(pair.generation_id, pair.question, pair.original_question)


def _model_questions(pairs) -> dict[int, str]:
    """{id: the model's question} of a queryset of pairs, read without loading them."""
    return {pk: _the_models(*values) for pk, *values in pairs.values_list("id", "generation_id", "question", "original_question")}


def _raw_output(pair: QAPair) -> tuple[str, str | None]:
    if pair.generation_id:
        reason = pair.generation.finish_reason
        return pair.generation.raw_text, (None if reason == "unknown" else reason)
    return f"[[Q]] {pair.question}\n[[A]] {pair.answer}", None


@transaction.atomic
def pairs_assess(*, pair_ids: Sequence[int]) -> int:
    """Flag these pairs: per-pair filters, duplicates among the same chunk's samples and project-wide (against pairs
    with lower ids, so the first of two duplicates stays clean). Replaces earlier flags of the pairs."""
    pairs = list(QAPair.objects.filter(pk__in=pair_ids).select_related("generation", "chunk", "project").order_by("id"))
    if not pairs:
        return 0
    project = pairs[0].project
    cfg = FilterConfig.from_overrides(project.filter_thresholds)
    threshold = cfg["duplicate.similarity"]
    term_threshold = cfg["duplicate.term_similarity"]
    PairFlag.objects.filter(pair__in=pairs).delete()
    QuestionBand.objects.filter(pair__in=pairs).delete()
    new_flags: list[PairFlag] = []
    new_bands: list[tuple[int, int, int, int]] = []  # (project, pair, band, hash)
    per_chunk: dict[int, DuplicateIndex] = {}
    # Earlier questions of the same chunks, for the same-chunk comparison.
    for pk, chunk_id, *values in (
        QAPair.objects.filter(chunk_id__in={p.chunk_id for p in pairs}, id__lt=pairs[0].pk)
        .order_by("id")
        .values_list("id", "chunk_id", "generation_id", "question", "original_question")
    ):
        if question := _the_models(*values):
            per_chunk.setdefault(chunk_id, DuplicateIndex.for_config(cfg)).check_and_add(pk, question)
    # Project-wide: the bands of all these questions looked up at once; the pairs of this call are compared with the
    # earlier ones among them in memory.
    mine = {p.pk: model_question(p) for p in pairs}
    bands_of = {pk: question_bands(question, term_threshold) for pk, question in mine.items() if question}
    stored = _pairs_sharing_bands(project, bands_of, before=pairs[-1].pk)  # their own bands were deleted above
    questions = _model_questions(QAPair.objects.filter(pk__in={i for ids in stored.values() for i in ids}))
    in_call: dict[tuple[int, int], list[int]] = {}
    for pair in pairs:
        raw, finish = _raw_output(pair)
        result = assess(pair.chunk.text, raw, finish_reason=finish, cfg=cfg)
        flags = list(result.flags)
        question = mine[pair.pk]
        if question:
            same, same_sim = per_chunk.setdefault(pair.chunk_id, DuplicateIndex.for_config(cfg)).check_and_add(pair.pk, question)
            bands = bands_of[pair.pk]
            candidates = {i for key in bands for i in stored.get(key, ()) if i < pair.pk} | {
                i for key in bands for i in in_call.get(key, ())
            }
            other, other_sim = _most_similar(question, candidates, questions, threshold, term_threshold)
            if same is not None and same_sim >= other_sim:
                flags.append(duplicate_flag(same, same_sim, same_chunk=True, label="pair"))
            elif other is not None:
                flags.append(duplicate_flag(other, other_sim, same_chunk=False, label="pair"))
            new_bands += [(project.pk, pair.pk, b, h) for b, h in bands]
            for key in bands:
                in_call.setdefault(key, []).append(pair.pk)
            questions[pair.pk] = question
        for flag in flags:
            flag.severity = cfg.severities.get(flag.name, flag.severity)
            new_flags.append(
                PairFlag(
                    pair=pair, name=flag.name, severity=flag.severity, score=flag.score, reason=flag.reason, details=flag.details
                )
            )
        pair.flags = sorted({f.name for f in flags})
        pair.is_flagged = bool(pair.flags)
    _bands_insert(new_bands)
    PairFlag.objects.bulk_create(new_flags)
    # One UPDATE per distinct set of flags (a handful per save) instead of bulk_update's CASE over every pair, whose
    # building cost the storing thread more Python than all the inserts (benchmarks/store.py).
    by_flags: dict[tuple[str, ...], list[int]] = {}
    for pair in pairs:
        by_flags.setdefault(tuple(pair.flags), []).append(pair.pk)
    for flags, ids in by_flags.items():
        QAPair.objects.filter(pk__in=ids).update(flags=list(flags), is_flagged=bool(flags))
    if project.embedding_model:
        ids = [pk for pk, question in mine.items() if question]
        transaction.on_commit(lambda: embeddings_send(project_id=project.pk, pair_ids=ids))
    return len(pairs)


EMBED_TASK = "workers.embeddings.embed_question_duplicates"


def embeddings_send(*, project_id: int, pair_ids: list[int]) -> bool:
    """Send the questions to the GPU workers' embedding check. When the broker does not take the message, the ids are
    kept in an EmbeddingDispatch row (the pairs are stored either way) and the dispatch sweep sends them later."""
    from workbench.celery import app

    if not pair_ids:
        return True
    try:
        app.send_task(EMBED_TASK, args=[pair_ids], queue="gpu")
    except Exception as exc:  # whatever stops the broker from taking it: kept for the sweep
        log.exception("could not send the embedding check of %d questions", len(pair_ids))
        EmbeddingDispatch.objects.create(project_id=project_id, pair_ids=pair_ids, error=f"{type(exc).__name__}: {exc}"[:2000])
        return False
    return True


def embeddings_dispatch_sweep() -> int:
    """Send again the embedding checks the broker did not take. Returns how many messages were sent."""
    from workbench.celery import app

    sent = 0
    for pk, pair_ids in EmbeddingDispatch.objects.order_by("pk").values_list("pk", "pair_ids"):
        # The row is deleted before its message is sent, in one transaction: a concurrent sweep's delete waits for this
        # one and then deletes (and sends) nothing; a refused message, or a sweep that dies first, keeps the row.
        with transaction.atomic():
            deleted, _ = EmbeddingDispatch.objects.filter(pk=pk).delete()
            if not deleted:
                continue
            try:
                app.send_task(EMBED_TASK, args=[pair_ids], queue="gpu")
            except Exception:
                log.exception("the broker still does not take the embedding check of %d questions", len(pair_ids))
                transaction.set_rollback(True)
                break
        sent += 1
    return sent


def _bands_insert(rows: list[tuple[int, int, int, int]]) -> None:
    """Insert question bands (about five a pair) in one parametrised statement run per row: the ORM's bulk_create
    built a model and prepared each field of every row, a third of the storing thread's database time."""
    if not rows:
        return
    table = connection.ops.quote_name(QuestionBand._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} (project_id, pair_id, band, hash) VALUES (%s, %s, %s, %s)", rows)


def question_embeddings_store(*, project: Project, model: str, vectors: dict[int, bytes]) -> None:
    """Store (or replace) the questions' embeddings computed by a GPU worker."""
    with transaction.atomic():
        QuestionEmbedding.objects.filter(pair_id__in=list(vectors)).delete()
        QuestionEmbedding.objects.bulk_create(
            [QuestionEmbedding(project=project, pair_id=pid, model=model, vector=v) for pid, v in vectors.items()]
        )


@transaction.atomic
def pairs_flag_embedding_duplicates(*, similar: dict[int, tuple[int, float]], model: str) -> int:
    """Flag pairs whose question's embedding is close to an earlier one's: {pair id: (earlier pair id, cosine)}. A
    pair already flagged as a duplicate keeps the higher score; the reason names the embedding model."""
    flagged = 0
    for pair in QAPair.objects.select_for_update().filter(pk__in=list(similar)).select_related("project"):
        other, cosine = similar[pair.pk]
        cfg = FilterConfig.from_overrides(pair.project.filter_thresholds)
        existing = PairFlag.objects.filter(pair=pair, name="duplicate").first()
        if existing is not None and existing.score >= cosine:
            continue
        reason = (
            f"The question means the same as a question elsewhere in the project (pair {other}): "
            f"cosine {cosine:.2f} of their {model} embeddings."
        )
        PairFlag.objects.update_or_create(
            pair=pair,
            name="duplicate",
            defaults={
                "severity": cfg.severities.get(FlagName.DUPLICATE, Severity.WARNING),
                "score": round(min(1.0, cosine), 3),
                "reason": reason,
                "details": {"similar_to": other, "embedding": model},
            },
        )
        pair.flags = sorted(set(pair.flags) | {"duplicate"})
        pair.is_flagged = True
        pair.save(update_fields=["flags", "is_flagged"])
        flagged += 1
    return flagged


CANDIDATES_PER_BAND = 50  # the earliest pairs sharing one band value: enough to find the duplicate, bounded for common ones


def _pairs_sharing_bands(
    project: Project, bands_of: dict[int, list[tuple[int, int]]], *, before: int
) -> dict[tuple[int, int], list[int]]:
    """{(band, hash): ids of stored pairs with that band value}, for every band of these questions, in one query (per
    band, its values looked up in the band index), pairs below `before`, the earliest few per value. Plain ORM, so it
    runs on PostgreSQL and on the embedded SQLite alike."""
    from django.db.models import F, Q, Window
    from django.db.models.functions import RowNumber

    values_of: dict[int, set[int]] = {}
    for bands in bands_of.values():
        for band, value in bands:
            values_of.setdefault(band, set()).add(value)
    if not values_of:
        return {}
    match = Q()
    for band, values in sorted(values_of.items()):
        match |= Q(band=band, hash__in=sorted(values))
    rows = (
        QuestionBand.objects.filter(match, project=project, pair_id__lt=before)
        .annotate(rank=Window(RowNumber(), partition_by=[F("band"), F("hash")], order_by=F("pair_id").asc()))
        .filter(rank__lte=CANDIDATES_PER_BAND)
        .values_list("band", "hash", "pair_id")
    )
    found: dict[tuple[int, int], list[int]] = {}
    for band, value, pair_id in rows:
        found.setdefault((band, value), []).append(pair_id)
    return found


def _most_similar(question: str, candidates, questions: dict[int, str], threshold: float, term_threshold: float):
    best, best_sim = None, 0.0
    for other_id in sorted(candidates):
        sim = question_similarity(question, questions[other_id], threshold=threshold, term_threshold=term_threshold)
        if sim > best_sim:
            best, best_sim = other_id, sim
    return best, best_sim


def scoring_job_create(*, project: Project, created_by=None) -> ScoringJob:
    job = ScoringJob.objects.create(project=project, created_by=created_by, total=QAPair.objects.filter(project=project).count())
    job_send_on_commit(job)
    return job


def scoring_job_run(*, job_id: int, batch: int = 500) -> ScoringJob:
    """Re-score every pair of the project in id order, reporting progress on the job row. Re-scoring is safe to repeat,
    so a job a lost worker left running is resumed from the start."""
    return job_run(model=ScoringJob, job_id=job_id, work=lambda job: _rescore(job, batch), resume=True)


def _rescore(job: ScoringJob, batch: int) -> dict:
    job_id = job.pk
    ids = list(QAPair.objects.filter(project=job.project).order_by("id").values_list("id", flat=True))
    QuestionBand.objects.filter(project=job.project).delete()
    ScoringJob.objects.filter(pk=job_id).update(total=len(ids), done=0)
    for start in range(0, len(ids), batch):
        pairs_assess(pair_ids=ids[start : start + batch])
        ScoringJob.objects.filter(pk=job_id).update(done=min(len(ids), start + batch))
    return {}
