"""Tasks of the default (CPU) queue for the quality filters."""

from __future__ import annotations

from celery import shared_task

from workbench.jobs import job_task
from workbench.quality.services import scoring_job_run


@shared_task(name="workbench.quality.tasks.rescore_project", acks_late=True, bind=True, max_retries=None)
def rescore_project(self, job_id: int) -> None:
    job_task(self, scoring_job_run, job_id=job_id)
