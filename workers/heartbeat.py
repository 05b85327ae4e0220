"""The heartbeat of a running batch: a thread renews the batch row's `heartbeat_at` while its task runs."""

from __future__ import annotations

import logging
import threading

from celery.signals import task_postrun
from django.conf import settings

from workbench.generation import services as generation

log = logging.getLogger(__name__)

_beating: dict[str, list[threading.Event]] = {}  # task id -> stops


def heartbeat_start(batch, *, task_id: str, keep_others: bool = False) -> None:
    """Renew the batch's heartbeat every GENERATION_HEARTBEAT_SECONDS until the task ends (stopped by `task_postrun`,
    also when the task raised) or the batch is no longer this attempt's (finished, released, taken back by the sweep).
    A thread, so that the heartbeat goes on while the main thread loads a model, compiles or generates for minutes.
    A task that takes over further batches (`keep_others`) beats for each of them until it ends."""
    stop = threading.Event()
    if not keep_others:
        for previous in _beating.pop(task_id, []):
            previous.set()
    _beating.setdefault(task_id, []).append(stop)
    thread = threading.Thread(
        target=_beat, args=(batch.pk, batch.attempts, stop), name=f"heartbeat-batch-{batch.pk}", daemon=True
    )
    thread.start()


def _beat(batch_id: int, attempt: int, stop: threading.Event) -> None:
    from django.db import connection

    try:
        while not stop.wait(settings.GENERATION_HEARTBEAT_SECONDS):
            try:
                if not generation.batch_heartbeat(batch_id=batch_id, attempt=attempt):
                    return  # no longer ours: the task's next store finds that out and stops
            except Exception:  # a database hiccup: the next beat tries again; long enough, and the sweep takes over
                log.exception("heartbeat of batch %s failed", batch_id)
    finally:
        connection.close()  # this thread's own connection


@task_postrun.connect
def _stop_heartbeat(task_id=None, **kwargs) -> None:
    for stop in _beating.pop(task_id, []):
        stop.set()
