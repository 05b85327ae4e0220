"""Tasks of the default (CPU) queue for the quality filters."""

from __future__ import annotations

from celery import shared_task

from workbench.quality.services import scoring_job_run


@shared_task(name="workbench.quality.tasks.rescore_project", acks_late=True)
def rescore_project(job_id: int) -> None:
    scoring_job_run(job_id=job_id)
