"""Writes of generation runs, batches, raw outputs and parsed pairs. The row is the truth about every job."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
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
from workbench.projects.services import project_lock

GPU_TASK = "workers.tasks.generate_batch"
PREFLIGHT_TASK = "workers.tasks.preflight_run"

log = logging.getLogger(__name__)


class BatchLost(Exception):
    """This worker no longer holds the batch: its heartbeat went stale and the batch was queued again."""


def _send(batch_ids: Sequence[int]) -> tuple[list[int], Exception | None]:
    """One message per batch on the `gpu` queue. Returns the ids sent, and the error that stopped the rest."""
    from workbench.celery import app

    sent: list[int] = []
    try:
        with app.connection_for_write() as connection:
            for batch_id in batch_ids:
                # By name: the web tier never imports the GPU side (torch).
                app.send_task(GPU_TASK, args=[batch_id], queue="gpu", connection=connection)
                sent.append(batch_id)
    except Exception as exc:  # whatever stops the broker from taking a message: the rows record it
        log.exception("could not send %d of %d batch messages", len(batch_ids) - len(sent), len(batch_ids))
        return sent, exc
    return sent, None


def batches_dispatch(*, run_id: int, batch_ids: Sequence[int]) -> GenerationRun:
    """Send the batches' messages (after the transaction that queued them has committed). When the broker does not
    take them, the unsent batches keep no dispatch time and the run is marked failed to dispatch with the reason; the
    run page's retry or the dispatch sweep sends them later. A run failed to dispatch whose batches are all sent again
    goes back to queued (or running)."""
    sent, error = _send(batch_ids)
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run_id)
        if error is not None:
            GenerationBatch.objects.filter(pk__in=set(batch_ids) - set(sent), status=BatchStatus.QUEUED).update(
                dispatched_at=None
            )
            if run.status in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DISPATCH_FAILED):
                run.status = RunStatus.DISPATCH_FAILED
                run.error = (
                    f"Could not queue {len(batch_ids) - len(sent)} of the run's batches: the task broker did not answer "
                    f"({type(error).__name__}: {error}). Nothing was generated from them and nothing was lost; they are "
                    "sent again automatically once the broker answers, or now with Retry."
                )[:5000]
                run.save(update_fields=["status", "error"])
        elif (
            run.status == RunStatus.DISPATCH_FAILED
            and not run.batches.filter(status=BatchStatus.QUEUED, dispatched_at__isnull=True).exists()
        ):
            run.status = RunStatus.RUNNING if run.started_at else RunStatus.QUEUED
            run.error = ""
            run.save(update_fields=["status", "error"])
    return run


def _dispatch_on_commit(run: GenerationRun, batch_ids: Sequence[int]) -> None:
    """Send after the commit (a worker must find the rows); the caller's run object then says whether the broker took
    them (status failed to dispatch, with the reason in `error`, when it did not)."""

    def send() -> None:
        dispatched = batches_dispatch(run_id=run.pk, batch_ids=batch_ids)
        run.status, run.error = dispatched.status, dispatched.error

    transaction.on_commit(send)


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


# Printable ASCII, spaces included (legal inside an HTTP header value): a UUID, or a client's own "job 42 retry".
REQUEST_KEY = re.compile(r"[\x20-\x7e]{1,200}")


def generation_run_start(*, project: Project, created_by=None, request_key: str = "") -> tuple[GenerationRun, bool]:
    """Start a run for a request that carries the client's key: (run, True) the first time; the same key again (a
    retried API call, a start form sent twice) gets the run it started, (run, False), and starts nothing, also when
    both requests arrive at once. Without a key, every call starts a run."""
    if request_key and not REQUEST_KEY.fullmatch(request_key):
        raise ValidationError("The request key must be 1 to 200 printable ASCII characters (spaces included).")

    def earlier() -> GenerationRun | None:
        return GenerationRun.objects.filter(project=project, request_key=request_key).first() if request_key else None

    if (run := earlier()) is not None:
        return run, False
    try:
        with transaction.atomic():
            return generation_run_create(project=project, created_by=created_by, request_key=request_key), True
    except IntegrityError:
        if (run := earlier()) is None:
            raise
        return run, False  # the same request, committed first by another process


@transaction.atomic
def generation_run_create(
    *,
    project: Project,
    created_by=None,
    chunks: Sequence[Chunk] | None = None,
    batch_chunks: int | None = None,
    request_key: str = "",
) -> GenerationRun:
    """Freeze the parameters, split the chunks into batches, and enqueue them once the transaction commits."""
    project_lock(project.pk)  # a deletion of the project's documents waits, or this waits for it
    validate_prompt_template(project.prompt_template)
    if chunks is None:
        chunks = list(
            Chunk.objects.filter(document__project=project, is_current=True).order_by("document_id", "index").only("id")
        )
    if not chunks:
        raise ValidationError("The project has no chunks to generate from; import documents first.")
    if batch_chunks is not None and batch_chunks < 1:
        raise ValidationError(f"Chunks per batch must be at least 1, not {batch_chunks}.")
    size = batch_chunks or settings.GENERATION_BATCH_CHUNKS
    params = run_parameters(project)
    run = GenerationRun.objects.create(
        project=project,
        created_by=created_by,
        parameters=params,
        chunk_count=len(chunks),
        samples_expected=len(chunks) * params["samples_per_chunk"],
        batches_total=(len(chunks) + size - 1) // size,
        request_key=request_key,
    )
    now = timezone.now()
    batches = GenerationBatch.objects.bulk_create(
        GenerationBatch(run=run, index=i, chunk_ids=[c.pk for c in chunks[start : start + size]], dispatched_at=now)
        for i, start in enumerate(range(0, len(chunks), size))
    )
    ids = [b.pk for b in batches]
    run_preflight_request(run=run)  # sent first: on the FIFO gpu queue a worker checks before it loads
    _dispatch_on_commit(run, ids)
    return run


def batch_claim(*, batch_id: int, worker: str) -> GenerationBatch | None:
    """Claim a batch for this worker with a conditional update: a queued batch, or a running one whose worker stopped
    beating (its message was redelivered). A running batch with a fresh heartbeat belongs to a live worker and is
    left alone, so a duplicate or redelivered message never runs it twice. Every claim counts as an attempt, and the
    attempt number fences the claimant's later writes. None when the batch is finished, held by a live worker, or its
    run was cancelled."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.GENERATION_STALE_SECONDS)
    updated = (
        GenerationBatch.objects.filter(pk=batch_id)
        .filter(
            Q(status=BatchStatus.QUEUED)
            | Q(status=BatchStatus.RUNNING, heartbeat_at__lt=stale)
            | Q(status=BatchStatus.RUNNING, heartbeat_at__isnull=True)
        )
        .exclude(run__status__in=[RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.SUCCEEDED])
        .update(status=BatchStatus.RUNNING, attempts=F("attempts") + 1, worker=worker[:200], claimed_at=now, heartbeat_at=now)
    )
    if not updated:
        return None
    GenerationRun.objects.filter(
        pk=GenerationBatch.objects.filter(pk=batch_id).values("run_id")[:1], status=RunStatus.QUEUED
    ).update(status=RunStatus.RUNNING, started_at=now)
    return GenerationBatch.objects.select_related("run", "run__project").get(pk=batch_id)


def batch_claim_next(*, run_id: int, worker: str, tries: int = 5) -> GenerationBatch | None:
    """Claim the run's next queued batch for a worker that is finishing another batch of the same run (the GPU's slots
    hand over from one to the next instead of idling through a tail). The same conditional claim as a message's: the
    batch's own message, when it comes, finds it running under a live heartbeat or done, and a worker that dies holding
    it leaves it to that message or the sweep once its heartbeat is stale. None when no queued batch is left."""
    for _ in range(tries):  # another worker may win the race for the first one
        batch_id = (
            GenerationBatch.objects.filter(run_id=run_id, status=BatchStatus.QUEUED)
            .order_by("index")
            .values_list("pk", flat=True)
            .first()
        )
        if batch_id is None:
            return None
        batch = batch_claim(batch_id=batch_id, worker=worker)
        if batch is not None:
            return batch
    return None


def batch_held_by_live_worker(*, batch_id: int) -> bool:
    """Running, with a heartbeat fresher than GENERATION_STALE_SECONDS: a message that finds it so is a duplicate, or a
    redelivery that came before the dead worker's heartbeat went stale."""
    stale = timezone.now() - timedelta(seconds=settings.GENERATION_STALE_SECONDS)
    return (
        GenerationBatch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING, heartbeat_at__gte=stale)
        .exclude(run__status__in=[RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.SUCCEEDED])
        .exists()
    )


def batch_heartbeat(*, batch_id: int, attempt: int) -> bool:
    """The worker holding this attempt is alive. False when the batch is no longer its own (finished, released, or
    queued again after its heartbeat went stale)."""
    return bool(
        GenerationBatch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING, attempts=attempt).update(
            heartbeat_at=timezone.now()
        )
    )


def batch_missing_samples(*, batch: GenerationBatch) -> list[tuple[Chunk, int]]:
    """What this batch still owes: resumable work generates only the (chunk, sample) pairs not yet stored."""
    samples = batch.run.parameters["samples_per_chunk"]
    done = set(Generation.objects.filter(run=batch.run, chunk_id__in=batch.chunk_ids).values_list("chunk_id", "sample_index"))
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
def generations_save(
    *,
    batch: GenerationBatch,
    samples: Sequence[GeneratedSample],
    worker: str,
    gpu_name: str,
    precision: str = "",
    sampling: dict | None = None,
) -> list[int]:
    """Store raw outputs and their parsed pairs. Inserting a sample that exists does nothing (unique key), so a batch
    redelivered after a crash cannot write a duplicate. Only the worker still holding the batch's attempt stores (the
    batch row is locked and its heartbeat renewed first); any other raises BatchLost. Returns the ids of the pairs
    created."""
    if not GenerationBatch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=batch.attempts).update(
        heartbeat_at=timezone.now()
    ):
        raise BatchLost(f"batch {batch.pk}: attempt {batch.attempts} no longer holds it; nothing stored")
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
def batch_finish(*, batch_id: int, attempt: int | None = None) -> None:
    """Done, when this attempt (if given) still holds the batch."""
    held = GenerationBatch.objects.filter(pk=batch_id, status=BatchStatus.RUNNING)
    if attempt is not None:
        held = held.filter(attempts=attempt)
    held.update(status=BatchStatus.DONE, finished_at=timezone.now(), error="")
    run_refresh(run_id=GenerationBatch.objects.values_list("run_id", flat=True).get(pk=batch_id))


@transaction.atomic
def batch_release(*, batch_id: int, error: str, transient: bool = True, attempt: int | None = None) -> bool:
    """After an error: back to the queue while attempts remain and the error is transient (True: the caller sends it
    again), else failed (False). A deterministic error (model missing, adapter mismatch, prompt too long) would only
    recur: it fails the batch at once. False, changing nothing, when this attempt (if given) no longer holds the batch."""
    batch = GenerationBatch.objects.select_for_update().get(pk=batch_id)
    if attempt is not None and (batch.status != BatchStatus.RUNNING or batch.attempts != attempt):
        return False
    if not transient or batch.attempts >= settings.GENERATION_MAX_ATTEMPTS:
        batch.status, batch.finished_at = BatchStatus.FAILED, timezone.now()
        batch.error = (
            f"Failed after {batch.attempts} attempts: {error}"
            if transient
            else f"Failed without a retry (the error would recur): {error}"
        )[:5000]
        batch.save(update_fields=["status", "finished_at", "error"])
        run_refresh(run_id=batch.run_id)
        return False
    batch.status, batch.error, batch.dispatched_at = BatchStatus.QUEUED, error[:5000], timezone.now()
    batch.save(update_fields=["status", "error", "dispatched_at"])
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


def _lock_batches(run_id: int, statuses: list[str]) -> None:
    """Lock a run's batches in these states (in id order) before its row: see generation_run_cancel."""
    list(GenerationBatch.objects.select_for_update().filter(run_id=run_id, status__in=statuses).order_by("pk").values_list("pk"))


def _check_cancellable(run: GenerationRun) -> None:
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DISPATCH_FAILED):
        raise ValidationError(
            f"Run {run.pk} is {run.get_status_display().lower()}; only queued or running runs can be cancelled."
        )


@transaction.atomic
def generation_run_cancel(*, run: GenerationRun) -> GenerationRun:
    """Stop the run: queued batches are cancelled and their messages become no-ops; a batch being generated is
    cancelled too, so its worker stops at its next store (its attempt no longer holds the row) and its GPU goes to the
    next run. What was stored before stays, for review, and "Retry" generates only the rest."""
    _check_cancellable(GenerationRun.objects.get(pk=run.pk))
    # Batches first, then the run: the order in which a worker's store takes them (its batch's fence, then the run's
    # progress). The other order deadlocks with a store in flight.
    _lock_batches(run.pk, [BatchStatus.QUEUED, BatchStatus.RUNNING])
    run = GenerationRun.objects.select_for_update().get(pk=run.pk)
    _check_cancellable(run)
    run.batches.filter(status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING]).update(
        status=BatchStatus.CANCELLED, finished_at=timezone.now()
    )
    run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return run


@transaction.atomic
def generation_run_retry(*, run: GenerationRun) -> GenerationRun:
    """Queue the failed and cancelled batches of a finished run again (they generate only what is missing), and send
    the batches of a run that failed to dispatch. The returned run is failed to dispatch again when the broker still
    does not answer. A batch resumed moments after its run was cancelled may still have its old worker on it until
    that worker's next store; both then store into the same (chunk, sample) keys, so nothing is written twice and
    progress is recounted from the rows."""
    project_lock(run.project_id)
    run = GenerationRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.DISPATCH_FAILED):
        raise ValidationError(
            f"Run {run.pk} is {run.get_status_display().lower()}; only failed or cancelled runs can be retried."
        )
    now = timezone.now()
    batches = list(run.batches.filter(status__in=[BatchStatus.FAILED, BatchStatus.CANCELLED]).values_list("pk", flat=True))
    GenerationBatch.objects.filter(pk__in=batches).update(
        status=BatchStatus.QUEUED, attempts=0, error="", finished_at=None, dispatched_at=now
    )
    unsent = list(run.batches.filter(status=BatchStatus.QUEUED, dispatched_at__isnull=True).values_list("pk", flat=True))
    GenerationBatch.objects.filter(pk__in=unsent).update(dispatched_at=now)
    started = run.started_at or run.status != RunStatus.DISPATCH_FAILED
    if run.started_at and run.finished_at:  # the time it stood stopped is not time it generated
        run.pauses = [*run.pauses, [run.finished_at.isoformat(), now.isoformat()]]
    run.status, run.finished_at, run.error = (RunStatus.RUNNING if started else RunStatus.QUEUED), None, ""
    run.save(update_fields=["status", "finished_at", "error", "pauses"])
    run_refresh(run_id=run.pk)
    run_preflight_request(run=run)
    _dispatch_on_commit(run, batches + unsent)
    return run


# --- Preflight: a GPU worker checks that the run's model resolves before its batches load it. ---------------------


def _send_preflight(run_id: int) -> bool:
    """Send the model check. One the broker does not take is marked unsent (no request time) for the dispatch sweep,
    which sends it before the run's batches. True when sent."""
    from workbench.celery import app

    try:
        app.send_task(PREFLIGHT_TASK, args=[run_id], queue="gpu")
    except Exception:
        log.exception("could not enqueue the preflight check of run %s", run_id)
        GenerationRun.objects.filter(pk=run_id, preflight_status=PreflightStatus.PENDING).update(preflight_requested_at=None)
        return False
    return True


def _preflights_send(live_runs) -> list[int]:
    """Send the model checks the broker did not take (runs still live, their check pending and never sent)."""
    sent = []
    unsent = GenerationRun.objects.filter(
        status__in=live_runs, preflight_status=PreflightStatus.PENDING, preflight_requested_at__isnull=True
    )
    for run_id in unsent.values_list("pk", flat=True):
        # Taken with a conditional update before it is sent, in one transaction: a concurrent sweep's update waits for
        # this one and then takes nothing, so one check goes out; a sweep that dies before its commit leaves it unsent.
        with transaction.atomic():
            if not unsent.filter(pk=run_id).update(preflight_requested_at=timezone.now()):
                continue
            if _send_preflight(run_id):  # one the broker refused is marked unsent again for the next sweep
                sent.append(run_id)
    return sent


def run_preflight_request(*, run: GenerationRun) -> None:
    """Ask a GPU worker, once the transaction commits, whether the run's base model, adapter and tokenizer resolve
    there. Sent before the run's batches, so on the FIFO `gpu` queue a worker checks before it loads."""
    now = timezone.now()
    GenerationRun.objects.filter(pk=run.pk).update(
        preflight_status=PreflightStatus.PENDING,
        preflight_requested_at=now,
        preflight_answered_at=None,
        preflight_worker="",
        preflight_report="",
    )
    run.preflight_status, run.preflight_requested_at = PreflightStatus.PENDING, now
    transaction.on_commit(lambda: _send_preflight(run.pk))


@transaction.atomic
def run_preflight_record(*, run_id: int, worker: str, status: str, report: str) -> GenerationRun | None:
    """Store a worker's answer. A failed check fails the run at once, with the report (what is missing and how to fix
    it) as its error; its queued batches are cancelled (their messages become no-ops; "Retry" queues them again and
    checks again). None when the run is gone."""
    if status == PreflightStatus.FAILED:
        _lock_batches(run_id, [BatchStatus.QUEUED])  # batches before the run, as a worker's store takes them
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


def generation_dispatch_sweep() -> dict[str, list[int]]:
    """Send again what no worker will otherwise pick up (run every GENERATION_SWEEP_SECONDS by Celery beat):

    - `stale`: running batches whose heartbeat is older than GENERATION_STALE_SECONDS (their worker died: SIGKILL,
      OOM, a lost host). Each goes back to the queue with a conditional update on that same stale heartbeat and
      attempt, so a live worker's batch is never taken, and a worker that was only late finds the batch gone at its
      next store or heartbeat and stops (its attempt no longer holds the row);
    - `unsent`: queued batches whose message the broker did not take (a run failed to dispatch, a retry not sent);
    - `lost`: queued batches sent longer than GENERATION_STALE_SECONDS ago with no message in the broker (Redis lost it);
      only where the broker can be read (Redis);
    - `preflight`: runs whose model check the broker did not take (sent before their batches).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.GENERATION_STALE_SECONDS)
    live_runs = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DISPATCH_FAILED]
    requeued: list[int] = []
    for pk, attempt, heartbeat in GenerationBatch.objects.filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, claimed_at__lt=stale),
        status=BatchStatus.RUNNING,
        run__status__in=live_runs,
    ).values_list("pk", "attempts", "heartbeat_at"):
        if GenerationBatch.objects.filter(pk=pk, status=BatchStatus.RUNNING, attempts=attempt, heartbeat_at=heartbeat).update(
            status=BatchStatus.QUEUED,
            dispatched_at=now,
            error=f"The worker stopped responding (no heartbeat for {settings.GENERATION_STALE_SECONDS} s); queued again.",
        ):
            requeued.append(pk)
    waiting = GenerationBatch.objects.filter(status=BatchStatus.QUEUED, run__status__in=live_runs)
    unsent = _take_for_sending(waiting.filter(dispatched_at__isnull=True), now)
    lost: list[int] = []
    try:
        in_broker = _batch_ids_in_broker()
    except Exception:  # the broker does not answer: sending below fails too and leaves the batches unsent
        log.exception("dispatch sweep: could not read the broker's queue")
        in_broker = None
    if in_broker is not None:
        candidates = [pk for pk in waiting.filter(dispatched_at__lt=stale).values_list("pk", flat=True) if pk not in in_broker]
        lost = _take_for_sending(waiting.filter(pk__in=candidates, dispatched_at__lt=stale), now)
    # A run's model check goes before its batches (a worker checks before it loads, on the FIFO gpu queue).
    preflight = _preflights_send(live_runs)
    by_run: dict[int, list[int]] = {}
    for pk, run_id in GenerationBatch.objects.filter(pk__in=requeued + unsent + lost).values_list("pk", "run_id"):
        by_run.setdefault(run_id, []).append(pk)
    for run_id, ids in by_run.items():
        batches_dispatch(run_id=run_id, batch_ids=ids)
    # What the broker took (a batch it did not take is left without a dispatch time, for the next sweep).
    sent = set(
        GenerationBatch.objects.filter(pk__in=requeued + unsent + lost, dispatched_at__isnull=False).values_list("pk", flat=True)
    )
    result = {
        "stale": [pk for pk in requeued if pk in sent],
        "unsent": [pk for pk in unsent if pk in sent],
        "lost": [pk for pk in lost if pk in sent],
        "preflight": preflight,
    }
    if by_run:
        log.info("dispatch sweep: %s", {kind: len(ids) for kind, ids in result.items()})
    return result


def _take_for_sending(batches, now) -> list[int]:
    """Mark these queued batches as being sent now, each with a conditional update (a concurrent sweep takes none)."""
    taken = []
    for pk, dispatched in batches.values_list("pk", "dispatched_at"):
        if GenerationBatch.objects.filter(pk=pk, status=BatchStatus.QUEUED, dispatched_at=dispatched).update(dispatched_at=now):
            taken.append(pk)
    return taken


def _batch_ids_in_broker() -> set[int] | None:
    """The batch ids of the `gpu` messages the broker holds, waiting or delivered and not yet acknowledged; None where
    the broker cannot be read this way (only Redis can)."""
    import base64
    import json

    from workbench.celery import app

    if not app.conf.broker_write_url.startswith(("redis://", "rediss://")):
        return None
    ids: set[int] = set()
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client = channel.client
        raw = [m for priority in channel.priority_steps for m in client.lrange(channel._q_for_pri("gpu", priority), 0, -1)]
        raw += [json.loads(v)[0] for v in client.hvals(channel.unacked_key)]
    for message in raw:
        message = json.loads(message) if isinstance(message, (bytes, str)) else message
        if message.get("headers", {}).get("task") != GPU_TASK:
            continue
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if args:
            ids.add(int(args[0]))
    return ids
