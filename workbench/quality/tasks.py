"""Tasks of the default (CPU) queue for the quality filters."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from workbench.quality.models import JobStatus, ScoringJob
from workbench.quality.services import scoring_job_run


@shared_task(name="workbench.quality.tasks.rescore_project", acks_late=True)
def rescore_project(job_id: int) -> None:
    try:
        scoring_job_run(job_id=job_id)
    except Exception as exc:
        ScoringJob.objects.filter(pk=job_id).update(status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        raise
