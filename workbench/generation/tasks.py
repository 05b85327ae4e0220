"""Tasks of the `default` queue for generation: the periodic dispatch sweep (sent by Celery beat), which also sends
the background jobs (imports, exports, re-scoring) whose message the broker did not take."""

from __future__ import annotations

from celery import shared_task

from workbench.generation import services
from workbench.jobs import jobs_dispatch_sweep


@shared_task(name="workbench.generation.tasks.dispatch_sweep", ignore_result=True)
def dispatch_sweep() -> dict[str, int]:
    """Send again the batches no worker will otherwise pick up (stale heartbeats, unsent and lost messages) and the
    jobs and embedding checks the broker did not take."""
    from workbench.quality.services import embeddings_dispatch_sweep  # an app above this one: not when the module loads

    sent = {kind: len(ids) for kind, ids in services.generation_dispatch_sweep().items()}
    return sent | {"jobs": jobs_dispatch_sweep(), "embeddings": embeddings_dispatch_sweep()}
