"""How a real GPU worker process meets failures: a model that does not load leaves the worker able to serve the next
run; a deterministic error fails its batch at once; a lost database connection is retried."""

from __future__ import annotations

import shutil

import pytest
from django.db import InterfaceError, OperationalError, connection

from tests.generation.test_worker_runs import (
    KILL_ENV,
    WORKER_ENV,
    assert_exactly_once,
    project_with_chunks,
    run_state,
    wait_for,
)
from workbench.generation.models import BatchStatus, Generation, GenerationBatch, RunStatus
from workbench.generation.services import generation_run_create
from workers.loading import ModelLoadError
from workers.tasks import is_transient

pytestmark = pytest.mark.worker


def finished(run_id, timeout=240):
    return wait_for(
        lambda: (r := run_state(run_id)).status in {"succeeded", "failed"} and r, timeout=timeout, what=f"run {run_id} to finish"
    )


def unloadable_copy(tiny_model, tmp_path):
    """The tiny base with its weights file overwritten: config and tokenizer resolve (the model check passes), the
    weights do not load."""
    base = tmp_path / "broken-base"
    shutil.copytree(tiny_model["base"], base)
    for weights in base.glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    return str(base)


def test_failed_model_load_leaves_the_worker_able_to_serve_the_next_run(start_worker, owner, tiny_model, tmp_path):
    good, good_chunks = project_with_chunks(owner, tiny_model, 2, samples=1)
    broken, _ = project_with_chunks(owner, tiny_model, 2, samples=1)
    broken.base_model = unloadable_copy(tiny_model, tmp_path)
    broken.save(update_fields=["base_model"])
    worker = start_worker(**WORKER_ENV)

    first = finished(generation_run_create(project=good, created_by=owner, batch_chunks=2).pk)
    assert first.status == RunStatus.SUCCEEDED, first.error
    failed = finished(generation_run_create(project=broken, created_by=owner, batch_chunks=2).pk)
    assert failed.status == RunStatus.FAILED and failed.preflight_status == "passed"  # the weights are what fails
    assert "broken-base" in failed.error
    # The same worker process, with the model it had loaded before the failed load, serves the next run.
    again = finished(generation_run_create(project=good, created_by=owner, batch_chunks=2).pk)
    assert worker.proc.poll() is None
    assert again.status == RunStatus.SUCCEEDED, again.error
    assert_exactly_once(again, good_chunks, 1)
    assert set(Generation.objects.filter(run=again).values_list("worker", flat=True)) == {worker.hostname}


def test_prompt_too_long_fails_its_batch_at_once_and_the_rest_completes(start_worker, owner, tiny_model):
    project, chunks = project_with_chunks(owner, tiny_model, 4, samples=1, long_chunk=True)
    start_worker(**WORKER_ENV | {"GENERATION_MAX_ATTEMPTS": "3"})
    run = finished(generation_run_create(project=project, created_by=owner, batch_chunks=1).pk)
    assert run.status == RunStatus.FAILED
    poison = GenerationBatch.objects.get(run=run, index=1)
    assert poison.status == BatchStatus.FAILED and poison.attempts == 1  # not retried: the same prompt fails again
    assert "Failed without a retry" in poison.error and "exceeds the model's context of 1024" in poison.error
    assert GenerationBatch.objects.filter(run=run, status=BatchStatus.DONE).count() == 3
    assert "batch 1" in run.error
    assert Generation.objects.filter(run=run).count() == 3


WORKER_APP = "genstruct-test-worker"


def _terminate_worker_connections() -> int:
    """Ends the worker's sessions on the test database (named by application_name), as a PostgreSQL restart or a
    dropped network would; the test's own sessions, and any a browser test left open in this process, stay."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [WORKER_APP],
        )
        return cursor.fetchone()[0]


def test_lost_database_connection_is_retried(start_worker, owner, tiny_model):
    project, chunks = project_with_chunks(owner, tiny_model, 6, samples=2, max_new_tokens=120)
    env = KILL_ENV | {
        "GENERATION_BACKEND": "slots",
        "GENERATION_MAX_BATCH": "4",
        "GENERATION_SAVE_EVERY": "1",
        "GENERATION_MAX_ATTEMPTS": "3",
    }
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}?application_name={WORKER_APP}"
    worker = start_worker(**env, DATABASE_URL=url)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=6)  # one batch of 12 samples
    stored = Generation.objects.filter(run=run)
    wait_for(lambda: stored.exists(), what="the first stored samples")
    assert _terminate_worker_connections() >= 1  # the worker's connections, in the middle of its batch
    run = finished(run.pk, timeout=300)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 2)
    batch = GenerationBatch.objects.get(run=run)
    assert batch.status == BatchStatus.DONE and batch.attempts == 2 and batch.error == ""
    assert worker.proc.poll() is None
    assert "OperationalError" in worker.log_text() or "InterfaceError" in worker.log_text()


def test_errors_are_sorted_into_transient_and_deterministic():
    try:
        try:
            raise OperationalError("server closed the connection unexpectedly")
        except OperationalError as cause:
            raise RuntimeError("storing the batch's results failed") from cause
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert is_transient(InterfaceError("connection already closed"))
    assert is_transient(TimeoutError("timed out"))
    assert is_transient(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_transient(ModelLoadError("Adapter not found: local directory /models/adapter"))
    assert not is_transient(ValueError("chunk 7: prompt of 1500 tokens plus 256 new tokens exceeds the model's context"))
    try:
        try:
            raise OperationalError("lost")
        except OperationalError:
            raise ModelLoadError("Base model weights not found") from None  # the cause is hidden on purpose
    except ModelLoadError as hidden:
        assert not is_transient(hidden)
