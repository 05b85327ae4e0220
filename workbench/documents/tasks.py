"""Large imports run on the default (CPU) queue."""

from __future__ import annotations

from celery import shared_task

from workbench.documents.services import import_job_run
from workbench.jobs import JobBusy


@shared_task(name="workbench.documents.tasks.run_import", acks_late=True, bind=True, max_retries=None)
def run_import(self, job_id: int) -> None:
    try:
        import_job_run(job_id=job_id)
    except JobBusy as busy:  # another delivery holds it: look again once its claim would be stale
        raise self.retry(countdown=busy.seconds) from None
