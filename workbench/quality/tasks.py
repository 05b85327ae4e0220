"""Tasks of the default (CPU) queue for the quality filters."""

from __future__ import annotations

from celery import shared_task

from workbench.jobs import JobBusy
from workbench.quality.services import scoring_job_run


@shared_task(name="workbench.quality.tasks.rescore_project", acks_late=True, bind=True, max_retries=None)
def rescore_project(self, job_id: int) -> None:
    try:
        scoring_job_run(job_id=job_id)
    except JobBusy as busy:  # another delivery holds it: look again once its claim would be stale
        raise self.retry(countdown=busy.seconds) from None
