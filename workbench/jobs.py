"""Background jobs whose row is the truth about them (imports, re-scoring, exports): one set of states, one way to run.

A job's model has `status` (JobStatus), `error` and `finished_at`. The Celery message carries only the row's id; the
worker claims the row with a conditional UPDATE, so a second delivery of the same message finds it taken and leaves it.
A message the broker did not take leaves the job queued with the reason in `error` (starting with `NOT_SENT`); the
jobs' dispatch sweep sends it again once the broker answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.apps import apps
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

Job = TypeVar("Job", bound=models.Model)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

log = logging.getLogger(__name__)

# Each job model and the task (on the `default` queue) that runs it, by the job's id.
JOB_TASKS = {
    "documents.ImportJob": "workbench.documents.tasks.run_import",
    "exports.Export": "workbench.exports.tasks.run_export",
    "quality.ScoringJob": "workbench.quality.tasks.rescore_project",
}
NOT_SENT = "Not started yet: the task broker did not take the job"
# A job's claim is stale (its worker gone) this long after the task time limit; and how often a job whose worker died
# is run again.
JOB_STALE_MARGIN = 60
JOB_MAX_ATTEMPTS = 3


class JobBusy(Exception):
    """Another delivery holds the job, claimed `seconds` before its claim goes stale: look again then."""

    def __init__(self, seconds: float):
        super().__init__(f"the job is running elsewhere; looking again in {seconds:.0f} s")
        self.seconds = seconds


def job_task(task, run: Callable[..., object], **job_id: int) -> None:
    """The body of a job's Celery task (bound, unlimited retries): run the job, and when another delivery holds it,
    look again once that claim would be stale."""
    try:
        run(**job_id)
    except JobBusy as busy:
        raise task.retry(countdown=busy.seconds) from None


def job_send(job: models.Model) -> bool:
    """Send the job's task. When the broker does not take it, the job stays queued with the reason in its `error` (on
    the row and on `job`), and the sweep sends it later; nothing was lost. True when sent."""
    from workbench.celery import app

    model = type(job)
    rows = model.objects.filter(pk=job.pk, status=JobStatus.QUEUED)
    try:
        app.send_task(JOB_TASKS[model._meta.label], args=[job.pk], queue="default")
    except Exception as exc:  # whatever stops the broker from taking the message: the row records it
        log.exception("could not send %s %s", model._meta.label, job.pk)
        job.error = (
            f"{NOT_SENT} ({type(exc).__name__}: {exc}). Nothing was lost: it starts automatically once the broker answers."
        )[:2000]
        rows.update(error=job.error)
        return False
    if job.error.startswith(NOT_SENT):
        rows.filter(error__startswith=NOT_SENT).update(error="")
        job.error = ""
    return True


def job_send_on_commit(job: models.Model) -> None:
    """Send once the transaction that made the job commits (a worker must find the row)."""
    transaction.on_commit(lambda: job_send(job))


WORKER_STOPPED = "The worker running this job stopped; it was queued again"


def jobs_dispatch_sweep() -> int:
    """Send again every job whose message the broker did not take, and every job whose worker stopped under it: one
    running with a claim older than the task time limit (a live task would have been stopped by then), whose message
    no broker gives back soon (the filesystem broker of the single-machine start never does, Redis only after its
    visibility timeout). Such a job is queued again with a conditional update on that same claim (a worker that claimed
    it meanwhile keeps it) and sent; the next claim resumes it as a redelivery would. Returns how many were sent."""
    from django.conf import settings

    stale = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + JOB_STALE_MARGIN)
    sent = 0
    for label in JOB_TASKS:
        model = apps.get_model(label)
        for job in model.objects.filter(status=JobStatus.RUNNING, claimed_at__lt=stale):
            if model.objects.filter(pk=job.pk, status=JobStatus.RUNNING, claimed_at=job.claimed_at).update(
                status=JobStatus.QUEUED, error=WORKER_STOPPED
            ):
                job.status, job.error = JobStatus.QUEUED, WORKER_STOPPED
                sent += job_send(job)
        for job in model.objects.filter(status=JobStatus.QUEUED, error__startswith=NOT_SENT):
            sent += job_send(job)
    return sent


def job_run(
    *,
    model: type[Job],
    job_id: int,
    work: Callable[[Job], dict],
    resume: bool = False,
    queryset: models.QuerySet | None = None,
    cleanup: Callable[[], None] | None = None,
) -> Job:
    """Claim the job, run `work(job)`, and record how it ended: done with the fields `work` returns, or failed with the
    error, which is raised again for Celery's log. `cleanup` runs after a claimed job ends, either way (not when the
    worker is stopped under it: the job is delivered again).

    A queued job is claimed. With `resume`, so is a running job whose claim is older than the task time limit (its
    worker is gone: a live task would have been stopped by then); one claimed more recently raises JobBusy, and the
    task looks again when that claim would be stale (a second copy of the message, or one redelivered at once after
    its worker was killed, never runs beside the first). Each claim counts an attempt; a job whose workers died
    JOB_MAX_ATTEMPTS times (a file that crashes the reader, an export that runs out of memory) fails instead of being
    run once more. A job that has ended is returned untouched."""
    from django.conf import settings

    rows = model.objects.filter(pk=job_id)
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + JOB_STALE_MARGIN)
    claimable = Q(status=JobStatus.QUEUED)
    if resume:
        claimable |= Q(status=JobStatus.RUNNING) & (Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True))
    claimed = rows.filter(claimable).update(status=JobStatus.RUNNING, attempts=F("attempts") + 1, claimed_at=now, error="")
    job = (queryset if queryset is not None else model.objects).get(pk=job_id)
    if not claimed:
        if resume and job.status == JobStatus.RUNNING and job.claimed_at is not None:
            raise JobBusy((job.claimed_at - stale).total_seconds() + 1)
        return job
    if job.attempts > JOB_MAX_ATTEMPTS:
        rows.update(
            status=JobStatus.FAILED,
            finished_at=now,
            error=f"The worker stopped while running this job {job.attempts - 1} times (out of memory, or a file that "
            "crashes its reader?); it is not run again. Nothing of a file it did not finish was written.",
        )
        if cleanup is not None:
            cleanup()
        return model.objects.get(pk=job_id)
    try:
        rows.update(status=JobStatus.DONE, finished_at=timezone.now(), **work(job))
    except Exception as exc:
        # A job recorded as done stays done, whatever happens after.
        rows.exclude(status=JobStatus.DONE).update(
            status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        if cleanup is not None:
            cleanup()
        raise
    # Not on a BaseException (the worker shutting down): the job stays running for its next delivery, with its files.
    if cleanup is not None:
        cleanup()
    return model.objects.get(pk=job_id)
