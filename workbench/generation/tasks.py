"""Tasks of the `default` queue for generation: the periodic dispatch sweep (sent by Celery beat)."""

from __future__ import annotations

from celery import shared_task

from workbench.generation import services


@shared_task(name="workbench.generation.tasks.dispatch_sweep", ignore_result=True)
def dispatch_sweep() -> dict[str, int]:
    """Send again the batches no worker will otherwise pick up: stale heartbeats, unsent and lost messages."""
    return {kind: len(ids) for kind, ids in services.generation_dispatch_sweep().items()}
