"""Writes of quality flags: assessing pairs as batches are saved, and re-scoring a project after a threshold change."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from workbench.generation.models import QAPair
from workbench.projects.models import Project
from workbench.quality.filters import (
    DuplicateIndex,
    FilterConfig,
    assess,
    duplicate_flag,
    jaccard,
    question_key,
    shingles,
)
from workbench.quality.models import JobStatus, PairFlag, QuestionBand, ScoringJob

BANDS, ROWS = 16, 4  # 64 permutations; a similarity of 0.7 shares a band with probability > 0.99


def _int64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def question_bands(question: str) -> list[tuple[int, int]]:
    from datasketch import MinHash

    key = question_key(question)
    if not key:
        return []
    grams = shingles(question)
    values = MinHash.bulk([[g.encode() for g in grams]], num_perm=BANDS * ROWS)[0].hashvalues
    bands = [(b, _int64(values[b * ROWS : (b + 1) * ROWS].tobytes())) for b in range(BANDS)]
    return [(-1, _int64(key.encode()))] + bands


def _raw_output(pair: QAPair) -> tuple[str, str | None]:
    if pair.generation_id:
        reason = pair.generation.finish_reason
        return pair.generation.raw_text, (None if reason == "unknown" else reason)
    return f"[[Q]] {pair.question}\n[[A]] {pair.answer}", None


@transaction.atomic
def pairs_assess(*, pair_ids: Sequence[int]) -> int:
    """Flag these pairs: per-pair filters, duplicates among the same chunk's samples and project-wide (against pairs
    with lower ids, so the first of two duplicates stays clean). Replaces earlier flags of the pairs."""
    pairs = list(
        QAPair.objects.filter(pk__in=pair_ids).select_related("generation", "chunk", "project").order_by("id")
    )
    if not pairs:
        return 0
    project = pairs[0].project
    cfg = FilterConfig.from_overrides(project.filter_thresholds)
    threshold = cfg["duplicate.similarity"]
    PairFlag.objects.filter(pair__in=pairs).delete()
    QuestionBand.objects.filter(pair__in=pairs).delete()
    new_flags: list[PairFlag] = []
    new_bands: list[QuestionBand] = []
    per_chunk: dict[int, DuplicateIndex] = {}
    # Earlier questions of the same chunks, for the same-chunk comparison.
    for earlier in QAPair.objects.filter(chunk_id__in={p.chunk_id for p in pairs}, id__lt=pairs[0].pk).exclude(question="").values_list("id", "chunk_id", "question"):
        per_chunk.setdefault(earlier[1], DuplicateIndex(threshold)).check_and_add(earlier[0], earlier[2])
    for pair in pairs:
        raw, finish = _raw_output(pair)
        result = assess(pair.chunk.text, raw, finish_reason=finish, cfg=cfg)
        flags = list(result.flags)
        if pair.question:
            same, same_sim = per_chunk.setdefault(pair.chunk_id, DuplicateIndex(threshold)).check_and_add(pair.pk, pair.question)
            bands = question_bands(pair.question)
            other, other_sim = _project_duplicate(project, pair, bands, threshold)
            if same is not None and same_sim >= other_sim:
                flags.append(duplicate_flag(same, same_sim, same_chunk=True, label="pair"))
            elif other is not None:
                flags.append(duplicate_flag(other, other_sim, same_chunk=False, label="pair"))
            new_bands += [QuestionBand(project=project, pair=pair, band=b, hash=h) for b, h in bands]
            QuestionBand.objects.bulk_create(new_bands)  # visible to the next pairs of this call
            new_bands = []
        for flag in flags:
            flag.severity = cfg.severities.get(flag.name, flag.severity)
            new_flags.append(PairFlag(pair=pair, name=flag.name, severity=flag.severity, score=flag.score,
                                      reason=flag.reason, details=flag.details))
        pair.flags = sorted({f.name for f in flags})
        pair.is_flagged = bool(pair.flags)
    PairFlag.objects.bulk_create(new_flags)
    QAPair.objects.bulk_update(pairs, ["flags", "is_flagged"])
    return len(pairs)


def _project_duplicate(project: Project, pair: QAPair, bands, threshold: float):
    if not bands:
        return None, 0.0
    from django.db.models import Q

    match = Q()
    for band, value in bands:
        match |= Q(band=band, hash=value)
    candidates = set(
        QuestionBand.objects.filter(match, project=project, pair_id__lt=pair.pk).values_list("pair_id", flat=True)[:50]
    )
    if not candidates:
        return None, 0.0
    mine = shingles(pair.question)
    best, best_sim = None, 0.0
    for other_id, question in QAPair.objects.filter(pk__in=candidates).values_list("id", "question"):
        sim = 1.0 if question_key(question) == question_key(pair.question) else jaccard(mine, shingles(question))
        if sim >= threshold and sim > best_sim:
            best, best_sim = other_id, sim
    return best, best_sim


def scoring_job_create(*, project: Project, created_by=None) -> ScoringJob:
    from workbench.celery import app

    job = ScoringJob.objects.create(project=project, created_by=created_by, total=QAPair.objects.filter(project=project).count())
    transaction.on_commit(lambda: app.send_task("workbench.quality.tasks.rescore_project", args=[job.pk], queue="default"))
    return job


def scoring_job_run(*, job_id: int, batch: int = 500) -> ScoringJob:
    """Re-score every pair of the project in id order, reporting progress on the job row."""
    claimed = ScoringJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(status=JobStatus.RUNNING)
    job = ScoringJob.objects.get(pk=job_id)
    if not claimed:
        return job
    ids = list(QAPair.objects.filter(project=job.project).order_by("id").values_list("id", flat=True))
    QuestionBand.objects.filter(project=job.project).delete()
    ScoringJob.objects.filter(pk=job_id).update(total=len(ids), done=0)
    for start in range(0, len(ids), batch):
        pairs_assess(pair_ids=ids[start : start + batch])
        ScoringJob.objects.filter(pk=job_id).update(done=min(len(ids), start + batch))
    ScoringJob.objects.filter(pk=job_id).update(status=JobStatus.DONE, finished_at=timezone.now())
    return ScoringJob.objects.get(pk=job_id)
