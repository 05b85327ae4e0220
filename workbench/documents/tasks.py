"""Large imports run on the default (CPU) queue."""

from __future__ import annotations

from celery import shared_task

from workbench.documents.services import import_job_run


@shared_task(name="workbench.documents.tasks.run_import", acks_late=True)
def run_import(job_id: int) -> None:
    import_job_run(job_id=job_id)
