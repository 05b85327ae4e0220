"""Background jobs whose row is the truth about them (imports, re-scoring, exports): one set of states, one way to run.

A job's model has `status` (JobStatus), `error` and `finished_at`. The Celery message carries only the row's id; the
worker claims the row with a conditional UPDATE, so a second delivery of the same message finds it taken and leaves it.
A message the broker did not take leaves the job queued with the reason in `error` (starting with `NOT_SENT`); the
jobs' dispatch sweep sends it again once the broker answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.apps import apps
from django.db import models, transaction
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


def jobs_dispatch_sweep() -> int:
    """Send again every job whose message the broker did not take. Returns how many were sent."""
    sent = 0
    for label in JOB_TASKS:
        for job in apps.get_model(label).objects.filter(status=JobStatus.QUEUED, error__startswith=NOT_SENT):
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
    """Claim the job (queued -> running; with `resume`, a job a lost worker left running too), run `work(job)`, and
    record how it ended: done with the fields `work` returns, or failed with the error, which is raised again for
    Celery's log. A job another delivery has claimed, or that has ended, is returned untouched. `cleanup` runs after a
    claimed job ends, either way (not when the worker is stopped under it: the job is delivered again)."""
    rows = model.objects.filter(pk=job_id)
    claimed = rows.filter(status__in=ACTIVE if resume else (JobStatus.QUEUED,)).update(status=JobStatus.RUNNING)
    job = (queryset if queryset is not None else model.objects).get(pk=job_id)
    if not claimed:
        return job
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
