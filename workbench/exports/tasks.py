"""Exports run on the default (CPU) queue."""

from __future__ import annotations

from celery import shared_task

from workbench.exports.services import export_run
from workbench.jobs import job_task


@shared_task(name="workbench.exports.tasks.run_export", acks_late=True, bind=True, max_retries=None)
def run_export(self, export_id: int) -> None:
    job_task(self, export_run, export_id=export_id)
