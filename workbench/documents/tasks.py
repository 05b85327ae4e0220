"""Large imports run on the default (CPU) queue."""

from __future__ import annotations

from celery import shared_task

from workbench.documents.services import import_job_run
from workbench.jobs import job_task


@shared_task(name="workbench.documents.tasks.run_import", acks_late=True, bind=True, max_retries=None)
def run_import(self, job_id: int) -> None:
    job_task(self, import_job_run, job_id=job_id)
