"""Cancelling a run while a worker stores results: both take the batch row and the run row, in the same order, so
neither waits for the other forever (PostgreSQL would abort one of them as a deadlock)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from workbench.generation import services as generation
from workbench.generation.models import BatchStatus, GenerationBatch, GenerationRun, RunStatus


@pytest.mark.django_db(transaction=True)
def test_cancel_beside_a_store_in_flight_waits_for_it_and_neither_deadlocks(project):
    run = GenerationRun.objects.create(
        project=project, status=RunStatus.RUNNING, parameters={"samples_per_chunk": 1}, batches_total=1
    )
    batch = GenerationBatch.objects.create(run=run, index=0, chunk_ids=[1], status=BatchStatus.RUNNING, attempts=1)
    fenced, errors = threading.Event(), []

    def store():  # a worker's store, as _store takes its locks: the batch's fence, then the run's progress
        try:
            with transaction.atomic():
                assert GenerationBatch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING, attempts=1).update(
                    heartbeat_at=timezone.now()
                )
                fenced.set()
                time.sleep(1.5)  # the cancel comes now
                generation.run_refresh(run_id=run.pk)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def cancel():
        try:
            generation.generation_run_cancel(run=run)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=store)
    worker.start()
    fenced.wait(10)
    admin = threading.Thread(target=cancel)
    admin.start()
    worker.join(30)
    admin.join(30)
    assert errors == []  # before: "deadlock detected" for one of them
    assert GenerationBatch.objects.get(pk=batch.pk).status == BatchStatus.CANCELLED
    assert GenerationRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
