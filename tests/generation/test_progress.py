"""The run page's figures: the ETA waits only for batches that will still run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from workbench.generation.models import BatchStatus, GenerationBatch, GenerationRun, RunStatus
from workbench.generation.selectors import run_progress


def test_eta_leaves_out_failed_and_cancelled_batches(project):
    run = GenerationRun.objects.create(
        project=project,
        status=RunStatus.RUNNING,
        parameters={"samples_per_chunk": 3},
        samples_expected=36,
        samples_done=6,
        started_at=timezone.now() - timedelta(minutes=1),
    )
    for index, (status, chunks) in enumerate(
        [
            (BatchStatus.DONE, [1, 2]),
            (BatchStatus.FAILED, [3, 4, 5, 6]),
            (BatchStatus.CANCELLED, [7, 8]),
            (BatchStatus.RUNNING, [9, 10, 11, 12]),
        ]
    ):
        GenerationBatch.objects.create(run=run, index=index, chunk_ids=chunks, status=status)
    progress = run_progress(run=run)
    # 36 expected - 6 done - 18 that the failed and cancelled batches will not write = 12 left, at 6 a minute.
    assert progress["pairs_per_minute"] == pytest.approx(6, rel=0.05)
    assert progress["eta_seconds"] == pytest.approx(120, rel=0.05)


def test_throughput_per_worker_and_gpu(project):
    """Tokens/s and pairs/hour per worker, over the time from its earliest sample's start (creation less duration) to
    its last stored sample; the earliest-started sample is not the first stored one here."""
    from workbench.documents.models import Chunk, SourceDocument
    from workbench.generation.models import Generation
    from workbench.generation.selectors import run_throughput

    run = GenerationRun.objects.create(project=project, status=RunStatus.RUNNING, parameters={"samples_per_chunk": 2})
    doc = SourceDocument.objects.create(project=project, content_hash="t", text="대한민국은 민주공화국이다.")
    chunks = [
        Chunk.objects.create(document=doc, chunking_key="k", index=i, text="대한민국", start=0, end=4, size=4) for i in range(3)
    ]
    t0 = timezone.now()
    rows = [
        ("gpu0@a", "NVIDIA H200", 0, 0, 2000, 100),
        ("gpu0@a", "NVIDIA H200", 1, 8, 3000, 150),
        ("gpu0@a", "NVIDIA H200", 2, 18, 3000, 150),
        ("gpu1@a", "NVIDIA H200", 0, 10, 5000, 200),
        ("gpu0@a", "NVIDIA H200", 1, 1, 6000, 100),  # stored 1 s after the first, started 4 s before it
    ]
    for n, (worker, gpu, chunk, at, ms, tokens) in enumerate(rows):
        g = Generation.objects.create(
            run=run,
            chunk=chunks[chunk],
            sample_index=n % 2,
            raw_text="",
            worker=worker,
            gpu_name=gpu,
            duration_ms=ms,
            completion_tokens=tokens,
        )
        Generation.objects.filter(pk=g.pk).update(created_at=t0 + timedelta(seconds=at))
    first, second = run_throughput(run=run)
    # gpu0: 500 tokens, 4 pairs from its earliest start (-5 s) to its last store (18 s): 23 s.
    assert (first["worker"], first["pairs"], first["output_tokens"], first["seconds"]) == ("gpu0@a", 4, 500, 23.0)
    assert (first["tokens_per_second"], first["pairs_per_hour"]) == (22, 626)
    # gpu1: one pair of 200 tokens in its 5 s.
    assert (second["worker"], second["tokens_per_second"], second["pairs_per_hour"]) == ("gpu1@a", 40, 720)
    assert run_progress(run=run)["workers"] == [first, second]


def test_a_stop_before_a_resume_is_left_out_of_the_rates(project):
    """Cancelled after 2 minutes, resumed 8 minutes later: pairs per minute, the ETA and each worker's tokens/s count
    the time the run was going, not the time it stood cancelled; a second stop and resume adds its own pause."""
    from workbench.documents.models import Chunk, SourceDocument
    from workbench.generation.models import Generation
    from workbench.generation.selectors import run_throughput
    from workbench.generation.services import generation_run_retry

    now = timezone.now()
    run = GenerationRun.objects.create(
        project=project,
        status=RunStatus.CANCELLED,
        parameters={"samples_per_chunk": 1},
        samples_expected=120,
        samples_done=60,
        started_at=now - timedelta(minutes=10),
        finished_at=now - timedelta(minutes=8),
    )
    GenerationBatch.objects.create(run=run, index=0, chunk_ids=list(range(60)), status=BatchStatus.DONE)
    GenerationBatch.objects.create(run=run, index=1, chunk_ids=list(range(60, 120)), status=BatchStatus.CANCELLED)
    run = generation_run_retry(run=run)
    assert run.status == RunStatus.RUNNING and len(run.pauses) == 1
    GenerationRun.objects.filter(pk=run.pk).update(samples_done=60)  # recounted from rows by the resume; none here
    progress = run_progress(run=GenerationRun.objects.get(pk=run.pk))
    # 60 pairs in the 2 minutes it was going: 30 a minute, 60 left: 2 minutes (it was 6 a minute and 10 minutes).
    assert progress["pairs_per_minute"] == pytest.approx(30, rel=0.02)
    assert progress["eta_seconds"] == pytest.approx(120, rel=0.02)

    doc = SourceDocument.objects.create(project=project, content_hash="p", text="대한민국은 민주공화국이다.")
    chunk = Chunk.objects.create(document=doc, chunking_key="k", index=0, text="대한민국", start=0, end=4, size=4)
    # Stored 9 min ago (started 10 min ago), 8 min ago, and 30 s after the resume: 10.5 minutes, 8 of them stopped.
    for sample, (at, ms) in enumerate([(-540, 60_000), (-480, 1_000), (30, 1_000)]):
        g = Generation.objects.create(
            run=run, chunk=chunk, sample_index=sample, raw_text="", worker="gpu0@a", duration_ms=ms, completion_tokens=150
        )
        Generation.objects.filter(pk=g.pk).update(created_at=now + timedelta(seconds=at))
    (row,) = run_throughput(run=run)
    assert row["seconds"] == pytest.approx(150, abs=1) and row["tokens_per_second"] == 3

    # Stopped again and resumed: both pauses are kept.
    GenerationRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    GenerationBatch.objects.filter(run=run, index=1).update(status=BatchStatus.CANCELLED)
    run = generation_run_retry(run=GenerationRun.objects.get(pk=run.pk))
    assert len(GenerationRun.objects.get(pk=run.pk).pauses) == 2
