"""Background jobs whose row is the truth about them (imports, re-scoring, exports): one set of states, one way to run.

A job's model has `status` (JobStatus), `error` and `finished_at`. The Celery message carries only the row's id; the
worker claims the row with a conditional UPDATE, so a second delivery of the same message finds it taken and leaves it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import models
from django.utils import timezone

Job = TypeVar("Job", bound=models.Model)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


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
    claimed job ends, either way."""
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
        raise
    finally:
        if cleanup is not None:
            cleanup()
    return model.objects.get(pk=job_id)
