"""Writes of generation runs, batches, raw outputs and parsed pairs. The row is the truth about every job."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from workbench.documents.models import Chunk
from workbench.generation.models import (
    BatchStatus,
    FinishReason,
    Generation,
    GenerationBatch,
    GenerationRun,
    PreflightStatus,
    QAPair,
    RunStatus,
)
from workbench.generation.parsing import parse_output
from workbench.projects.models import Project
from workbench.projects.prompts import validate_prompt_template

GPU_TASK = "workers.tasks.generate_batch"
PREFLIGHT_TASK = "workers.tasks.preflight_run"


def _enqueue(batch_ids: Sequence[int]) -> None:
    from workbench.celery import app

    # By name: the web tier never imports the GPU side (torch).
    for batch_id in batch_ids:
        app.send_task(GPU_TASK, args=[batch_id], queue="gpu")


def run_parameters(project: Project) -> dict:
    import hashlib

    return {
        "adapter_preset": project.adapter_preset,
        "base_model": project.base_model,
        "base_model_revision": project.base_model_revision,
        "adapter": project.adapter,
        "adapter_revision": project.adapter_revision,
        "prompt_template": project.prompt_template,
        "prompt_template_hash": hashlib.sha256(project.prompt_template.encode()).hexdigest()[:16],
        "temperature": project.temperature,
        "top_p": project.top_p,  # None: resolved by the worker from the checkpoint (recorded per sample)
        "top_k": project.top_k,
        "max_new_tokens": project.max_new_tokens,
        "samples_per_chunk": project.samples_per_chunk,
        "eos_token": "<|eot_id|>",
        "seed": random.SystemRandom().randrange(2**31),
    }


@transaction.atomic
def generation_run_create(
    *, project: Project, created_by=None, chunks: Sequence[Chunk] | None = None, batch_chunks: int | None = None
) -> GenerationRun:
    """Freeze the parameters, split the chunks into batches, and enqueue them once the transaction commits."""
    validate_prompt_template(project.prompt_template)
    if chunks is None:
        chunks = list(
            Chunk.objects.filter(document__project=project, is_current=True).order_by("document_id", "index").only("id")
        )
    if not chunks:
        raise ValidationError("The project has no chunks to generate from; import documents first.")
    size = batch_chunks or settings.GENERATION_BATCH_CHUNKS
    params = run_parameters(project)
    run = GenerationRun.objects.create(
        project=project,
        created_by=created_by,
        parameters=params,
        chunk_count=len(chunks),
        samples_expected=len(chunks) * params["samples_per_chunk"],
        batches_total=(len(chunks) + size - 1) // size,
    )
    batches = GenerationBatch.objects.bulk_create(
        GenerationBatch(run=run, index=i, chunk_ids=[c.pk for c in chunks[start : start + size]])
        for i, start in enumerate(range(0, len(chunks), size))
    )
    ids = [b.pk for b in batches]
    run_preflight_request(run=run)
    transaction.on_commit(lambda: _enqueue(ids))
    return run


def batch_claim(*, batch_id: int, worker: str) -> GenerationBatch | None:
    """Claim a batch for this worker. A batch left `running` by a worker that died is claimed again (its message was
    redelivered); every claim counts as an attempt. None when the batch is finished or its run was cancelled."""
    now = timezone.now()
    updated = (
        GenerationBatch.objects.filter(pk=batch_id, status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING])
        .exclude(run__status__in=[RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.SUCCEEDED])
        .update(status=BatchStatus.RUNNING, attempts=F("attempts") + 1, worker=worker[:200], claimed_at=now)
    )
    if not updated:
        return None
    GenerationRun.objects.filter(pk=GenerationBatch.objects.filter(pk=batch_id).values("run_id")[:1], status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now
    )
    return GenerationBatch.objects.select_related("run", "run__project").get(pk=batch_id)


def batch_missing_samples(*, batch: GenerationBatch) -> list[tuple[Chunk, int]]:
    """What this batch still owes: resumable work generates only the (chunk, sample) pairs not yet stored."""
    samples = batch.run.parameters["samples_per_chunk"]
    done = set(
        Generation.objects.filter(run=batch.run, chunk_id__in=batch.chunk_ids).values_list("chunk_id", "sample_index")
    )
    chunks = Chunk.objects.select_related("document").filter(pk__in=batch.chunk_ids).only("id", "text", "document__title")
    by_id = {c.pk: c for c in chunks}
    return [(by_id[cid], s) for cid in batch.chunk_ids if cid in by_id for s in range(samples) if (cid, s) not in done]


@dataclass(frozen=True)
class GeneratedSample:
    chunk_id: int
    sample_index: int
    raw_text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    seed: int
    duration_ms: int


@transaction.atomic
def generations_save(*, batch: GenerationBatch, samples: Sequence[GeneratedSample], worker: str, gpu_name: str,
                     precision: str = "", sampling: dict | None = None) -> list[int]:
    """Store raw outputs and their parsed pairs. Inserting a sample that exists does nothing (unique key), so a batch
    redelivered after a crash cannot write a duplicate. Returns the ids of the pairs created."""
    run = batch.run
    Generation.objects.bulk_create(
        [
            Generation(
                run=run,
                chunk_id=s.chunk_id,
                sample_index=s.sample_index,
                raw_text=s.raw_text,
                finish_reason=s.finish_reason if s.finish_reason in FinishReason.values else FinishReason.UNKNOWN,
                prompt_tokens=s.prompt_tokens,
                completion_tokens=s.completion_tokens,
                seed=s.seed,
                worker=worker[:200],
                gpu_name=gpu_name[:200],
                precision=precision[:40],
                sampling=sampling or {},
                duration_ms=s.duration_ms,
            )
            for s in samples
        ],
        ignore_conflicts=True,
    )
    return pairs_create_for_generations(run=run, chunk_ids=batch.chunk_ids)


def pairs_create_for_generations(*, run: GenerationRun, chunk_ids: Sequence[int]) -> list[int]:
    """A pair for every generation of these chunks that has none yet."""
    new = []
    for generation in Generation.objects.filter(run=run, chunk_id__in=chunk_ids, pair__isnull=True).only(
        "id", "chunk_id", "raw_text"
    ):
        parsed = parse_output(generation.raw_text)
        question, answer = parsed.question or "", parsed.answer or ""
        new.append(
            QAPair(
                project_id=run.project_id,
                chunk_id=generation.chunk_id,
                generation=generation,
                question=question,
                answer=answer,
                original_question=question,
                original_answer=answer,
            )
        )
    created = QAPair.objects.bulk_create(new, ignore_conflicts=False)
    return [p.pk for p in created]


@transaction.atomic
def batch_finish(*, batch_id: int) -> None:
    GenerationBatch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING).update(
        status=BatchStatus.DONE, finished_at=timezone.now(), error=""
    )
    run_refresh(run_id=GenerationBatch.objects.values_list("run_id", flat=True).get(pk=batch_id))


@transaction.atomic
def batch_release(*, batch_id: int, error: str, transient: bool = True) -> bool:
    """After an error: back to the queue while attempts remain and the error is transient (True), else failed
    (False). A deterministic error (model missing, adapter mismatch, prompt too long) would only recur: it fails the
    batch at once."""
    batch = GenerationBatch.objects.select_for_update().get(pk=batch_id)
    if not transient or batch.attempts >= settings.GENERATION_MAX_ATTEMPTS:
        batch.status, batch.finished_at = BatchStatus.FAILED, timezone.now()
        batch.error = (f"Failed after {batch.attempts} attempts: {error}" if transient
                       else f"Failed without a retry (the error would recur): {error}")[:5000]
        batch.save(update_fields=["status", "finished_at", "error"])
        run_refresh(run_id=batch.run_id)
        return False
    batch.status, batch.error = BatchStatus.QUEUED, error[:5000]
    batch.save(update_fields=["status", "error"])
    return True


@transaction.atomic
def batch_fail_exhausted(*, batch_id: int) -> None:
    """A batch claimed more often than allowed (its worker kept dying on it) is failed without another try."""
    batch = GenerationBatch.objects.select_for_update().get(pk=batch_id)
    batch.status, batch.finished_at = BatchStatus.FAILED, timezone.now()
    batch.error = (
        f"Failed after {batch.attempts - 1} attempts: the worker stopped while generating this batch"
        + (f" (last error: {batch.error})" if batch.error else "")
    )[:5000]
    batch.save(update_fields=["status", "finished_at", "error"])
    run_refresh(run_id=batch.run_id)


def run_refresh(*, run_id: int) -> GenerationRun:
    """Recount progress from the rows (never incremented blindly) and finish the run when every batch has ended."""
    run = GenerationRun.objects.select_for_update().get(pk=run_id)
    counts = run.batches.aggregate(
        done=Count("id", filter=Q(status=BatchStatus.DONE)), failed=Count("id", filter=Q(status=BatchStatus.FAILED))
    )
    run.batches_done, run.batches_failed = counts["done"], counts["failed"]
    run.samples_done = Generation.objects.filter(run=run).count()
    fields = ["batches_done", "batches_failed", "samples_done"]
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and run.batches_done + run.batches_failed == run.batches_total:
        run.status = RunStatus.FAILED if run.batches_failed else RunStatus.SUCCEEDED
        run.finished_at = timezone.now()
        if run.batches_failed:
            first = run.batches.filter(status=BatchStatus.FAILED).order_by("index").first()
            run.error = f"{run.batches_failed} of {run.batches_total} batches failed. First: batch {first.index}: {first.error}"
        fields += ["status", "finished_at", "error"]
    run.save(update_fields=fields)
    return run


@transaction.atomic
def generation_run_cancel(*, run: GenerationRun) -> GenerationRun:
    """Stop dispatching: queued batches are cancelled and their messages become no-ops; a batch being generated
    finishes and is kept."""
    run = GenerationRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise ValidationError(f"Run {run.pk} is {run.get_status_display().lower()}; only queued or running runs can be cancelled.")
    run.batches.filter(status=BatchStatus.QUEUED).update(status=BatchStatus.CANCELLED)
    run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run


@transaction.atomic
def generation_run_retry(*, run: GenerationRun) -> GenerationRun:
    """Queue the failed and cancelled batches of a finished run again; they generate only what is missing."""
    run = GenerationRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ValidationError(f"Run {run.pk} is {run.get_status_display().lower()}; only failed or cancelled runs can be retried.")
    batches = list(run.batches.filter(status__in=[BatchStatus.FAILED, BatchStatus.CANCELLED]).values_list("pk", flat=True))
    GenerationBatch.objects.filter(pk__in=batches).update(status=BatchStatus.QUEUED, attempts=0, error="", finished_at=None)
    run.status, run.finished_at, run.error = RunStatus.RUNNING, None, ""
    run.save(update_fields=["status", "finished_at", "error"])
    run_refresh(run_id=run.pk)
    run_preflight_request(run=run)
    transaction.on_commit(lambda: _enqueue(batches))
    return run


# --- Preflight: a GPU worker checks that the run's model resolves before its batches load it. ---------------------


def _send_preflight(run_id: int) -> None:
    import logging

    from workbench.celery import app

    try:
        app.send_task(PREFLIGHT_TASK, args=[run_id], queue="gpu")
    except Exception:  # the batches go on; the run page says that no GPU worker answered the check
        logging.getLogger(__name__).exception("could not enqueue the preflight check of run %s", run_id)


def run_preflight_request(*, run: GenerationRun) -> None:
    """Ask a GPU worker, once the transaction commits, whether the run's base model, adapter and tokenizer resolve
    there. Sent before the run's batches, so on the FIFO `gpu` queue a worker checks before it loads."""
    now = timezone.now()
    GenerationRun.objects.filter(pk=run.pk).update(
        preflight_status=PreflightStatus.PENDING, preflight_requested_at=now, preflight_answered_at=None,
        preflight_worker="", preflight_report="",
    )
    run.preflight_status, run.preflight_requested_at = PreflightStatus.PENDING, now
    transaction.on_commit(lambda: _send_preflight(run.pk))


@transaction.atomic
def run_preflight_record(*, run_id: int, worker: str, status: str, report: str) -> GenerationRun | None:
    """Store a worker's answer. A failed check fails the run at once, with the report (what is missing and how to fix
    it) as its error; its queued batches are cancelled (their messages become no-ops; "Retry" queues them again and
    checks again). None when the run is gone."""
    run = GenerationRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        return None
    run.preflight_status, run.preflight_answered_at = status, timezone.now()
    run.preflight_worker, run.preflight_report = worker[:200], report[:5000]
    fields = ["preflight_status", "preflight_answered_at", "preflight_worker", "preflight_report"]
    if status == PreflightStatus.FAILED and run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        run.batches.filter(status=BatchStatus.QUEUED).update(status=BatchStatus.CANCELLED)
        run.status, run.finished_at = RunStatus.FAILED, timezone.now()
        run.error = f"The model check on GPU worker {worker} failed. {report}"[:5000]
        fields += ["status", "finished_at", "error"]
    run.save(update_fields=fields)
    return run

