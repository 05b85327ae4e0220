"""Exports run on the default (CPU) queue."""

from __future__ import annotations

from celery import shared_task

from workbench.exports.services import export_run


@shared_task(name="workbench.exports.tasks.run_export", acks_late=True)
def run_export(export_id: int) -> None:
    export_run(export_id=export_id)
