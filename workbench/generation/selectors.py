"""Reads of runs and their progress."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from workbench.generation.models import BatchStatus, Generation, GenerationRun, PreflightStatus, RunStatus


def paused_seconds(run: GenerationRun, start, end) -> float:
    """Seconds between `start` and `end` that the run stood stopped (cancelled or failed, then resumed)."""
    paused = 0.0
    for stopped, resumed in run.pauses:
        low, high = max(start, datetime.fromisoformat(stopped)), min(end, datetime.fromisoformat(resumed))
        paused += max(0.0, (high - low).total_seconds())
    return paused


def run_progress(*, run: GenerationRun) -> dict:
    """What the progress bar shows: pairs done, pairs per minute (over the time the run was going: a stop before a
    resume left out), ETA and the reasons of failed batches."""
    rate = None
    eta = None
    if run.started_at and run.samples_done:
        end = run.finished_at or timezone.now()
        seconds = (end - run.started_at).total_seconds() - paused_seconds(run, run.started_at, end)
        minutes = max(seconds / 60, 1e-6)
        rate = run.samples_done / minutes
        remaining = max(0, run.samples_expected - run.samples_done - samples_given_up(run=run))
        eta = None if run.finished_at else round(remaining / rate * 60)
    failures = list(run.batches.filter(status=BatchStatus.FAILED).order_by("index").values("index", "error", "attempts")[:20])
    retrying = list(
        run.batches.filter(status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING])
        .exclude(error="")
        .order_by("index")
        .values("index", "error", "attempts")[:20]
    )
    return {
        "id": run.pk,
        "status": run.status,
        "samples_done": run.samples_done,
        "samples_expected": run.samples_expected,
        "percent": round(100 * run.samples_done / run.samples_expected, 1) if run.samples_expected else 0.0,
        "batches_total": run.batches_total,
        "batches_done": run.batches_done,
        "batches_failed": run.batches_failed,
        "pairs_per_minute": round(rate, 1) if rate is not None else None,
        "eta_seconds": eta,
        "error": run.error,
        "preflight_status": run.preflight_status,
        "notice": run_preflight_notice(run=run),
        "failed_batches": failures,
        "workers": run_throughput(run=run),
        "retrying_batches": retrying,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def run_throughput(*, run: GenerationRun) -> list[dict]:
    """Per worker and GPU: pairs stored, output tokens, and tokens/s and pairs/hour over the time it generated for this
    run (from the start of its earliest sample, a stored sample's creation less its duration, to its last stored
    sample, less any time the run stood stopped before a resume; storing and filtering included, model loading
    not)."""
    from datetime import timedelta

    from django.db.models import Count, Max, Min, Sum

    rows = list(
        Generation.objects.filter(run=run)
        .values("worker", "gpu_name")
        .annotate(
            samples=Count("id"),
            tokens=Sum("completion_tokens"),
            first=Min("created_at"),
            last=Max("created_at"),
            longest_ms=Max("duration_ms"),
        )
        .order_by("worker", "gpu_name")
    )
    out = []
    for row in rows:
        # The earliest-started sample need not be the first stored (samples are stored in groups as they finish), but
        # it started no later than the first stored one did, so it was stored within the longest duration after it.
        early = Generation.objects.filter(
            run=run,
            worker=row["worker"],
            gpu_name=row["gpu_name"],
            created_at__lte=row["first"] + timedelta(milliseconds=row["longest_ms"] or 0),
        ).values_list("created_at", "duration_ms")
        start = min(created - timedelta(milliseconds=ms or 0) for created, ms in early)
        seconds = (row["last"] - start).total_seconds() - paused_seconds(run, start, row["last"])
        out.append(
            {
                "worker": row["worker"],
                "gpu": row["gpu_name"],
                "pairs": row["samples"],
                "output_tokens": row["tokens"] or 0,
                "seconds": round(seconds, 1),
                "tokens_per_second": round((row["tokens"] or 0) / seconds) if seconds > 0 else None,
                "pairs_per_hour": round(row["samples"] / seconds * 3600) if seconds > 0 else None,
            }
        )
    return out


def samples_given_up(*, run: GenerationRun) -> int:
    """Samples that failed or cancelled batches will not produce: the ETA waits only for work that will still run."""
    chunk_ids = [
        c
        for ids in run.batches.filter(status__in=[BatchStatus.FAILED, BatchStatus.CANCELLED]).values_list("chunk_ids", flat=True)
        for c in ids
    ]
    if not chunk_ids:
        return 0
    stored = Generation.objects.filter(run=run, chunk_id__in=chunk_ids).count()
    return max(0, len(chunk_ids) * run.parameters.get("samples_per_chunk", 1) - stored)


def runs_for_project(*, project):
    return GenerationRun.objects.filter(project=project).select_related("created_by").order_by("-created_at")


def run_sampling_used(*, run: GenerationRun, limit: int = 5) -> list[dict]:
    """The sampling the workers used for this run's samples (top-k and top-p resolved against the checkpoint)."""
    return list(Generation.objects.filter(run=run).exclude(sampling={}).values_list("sampling", flat=True).distinct()[:limit])


def run_for_preflight(*, run_id: int) -> GenerationRun | None:
    """The run, while its model check is awaited and it may still generate; None otherwise (a redelivered check does
    nothing)."""
    return GenerationRun.objects.filter(
        pk=run_id, preflight_status=PreflightStatus.PENDING, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).first()


def run_preflight_notice(*, run: GenerationRun, now=None) -> str:
    """What the run page says while the model check is awaited: nothing at first, then, once
    GENERATION_PREFLIGHT_TIMEOUT has passed with no GPU worker answering, that none did (the run stays queued)."""
    if run.preflight_status != PreflightStatus.PENDING or run.status != RunStatus.QUEUED or not run.preflight_requested_at:
        return ""
    waited = (now or timezone.now()) - run.preflight_requested_at
    if waited < timedelta(seconds=settings.GENERATION_PREFLIGHT_TIMEOUT):
        return ""
    return (
        f"No GPU worker has answered the model check for {int(waited.total_seconds())} s. The run stays queued and starts "
        "when a worker takes it: start one with `celery -A workbench worker -Q gpu --pool solo` on a machine with the model "
        "(`bin/start` runs one), or wait if the GPU workers are busy with earlier runs."
    )
