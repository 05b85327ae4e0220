"""Exports run on the default (CPU) queue."""
from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from workbench.exports.models import Export, ExportStatus
from workbench.exports.services import export_run


@shared_task(name="workbench.exports.tasks.run_export", acks_late=True)
def run_export(export_id: int) -> None:
    try:
        export_run(export_id=export_id)
    except Exception as exc:
        Export.objects.filter(pk=export_id).update(status=ExportStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now())
        raise
