"""The run page's figures: the ETA waits only for batches that will still run."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from workbench.generation.models import BatchStatus, GenerationBatch, GenerationRun, RunStatus
from workbench.generation.selectors import run_progress


def test_eta_leaves_out_failed_and_cancelled_batches(project):
    run = GenerationRun.objects.create(
        project=project, status=RunStatus.RUNNING, parameters={"samples_per_chunk": 3}, samples_expected=36,
        samples_done=6, started_at=timezone.now() - timedelta(minutes=1),
    )
    for index, (status, chunks) in enumerate([(BatchStatus.DONE, [1, 2]), (BatchStatus.FAILED, [3, 4, 5, 6]),
                                              (BatchStatus.CANCELLED, [7, 8]), (BatchStatus.RUNNING, [9, 10, 11, 12])]):
        GenerationBatch.objects.create(run=run, index=index, chunk_ids=chunks, status=status)
    progress = run_progress(run=run)
    # 36 expected - 6 done - 18 that the failed and cancelled batches will not write = 12 left, at 6 a minute.
    assert progress["pairs_per_minute"] == pytest.approx(6, rel=0.05)
    assert progress["eta_seconds"] == pytest.approx(120, rel=0.05)
