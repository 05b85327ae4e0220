"""Generation runs through real Celery worker processes on the tiny model: completion, crashes, poison batches, cancel."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from tests.factories import make_project
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import BatchStatus, Generation, GenerationBatch, GenerationRun, QAPair, RunStatus
from workbench.generation.services import generation_run_cancel, generation_run_create

pytestmark = pytest.mark.worker

WORKER_ENV = {
    "MODEL_DEVICE": "cpu",
    "GENERATION_BACKEND": "batched",
    # Short broker timeouts so a killed worker's batch is redelivered within seconds, not an hour.
    "CELERY_TASK_SOFT_TIME_LIMIT": "40",
    "CELERY_TASK_TIME_LIMIT": "45",
    "CELERY_VISIBILITY_TIMEOUT": "50",
}
# A redelivered message claims a running batch only once its heartbeat is stale: stale well before the redelivery.
KILL_ENV = WORKER_ENV | {
    "CELERY_TASK_SOFT_TIME_LIMIT": "8",
    "CELERY_TASK_TIME_LIMIT": "10",
    "CELERY_VISIBILITY_TIMEOUT": "12",
    "GENERATION_HEARTBEAT_SECONDS": "1",
    "GENERATION_STALE_SECONDS": "4",
}

SENTENCES = [
    "대한민국은 민주공화국이다.",
    "대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다.",
    "대한민국의 국민이 되는 요건은 법률로 정한다.",
    "국가는 법률이 정하는 바에 의하여 재외국민을 보호할 의무를 진다.",
    "대한민국의 영토는 한반도와 그 부속도서로 한다.",
    "대한민국은 통일을 지향하며, 자유민주적 기본질서에 입각한 평화적 통일 정책을 수립하고 이를 추진한다.",
    "대한민국은 국제평화의 유지에 노력하고 침략적 전쟁을 부인한다.",
    "공무원은 국민전체에 대한 봉사자이며, 국민에 대하여 책임을 진다.",
]


def project_with_chunks(owner, tiny_model, n, *, samples=2, max_new_tokens=12, long_chunk=False):
    project = make_project(
        admins=[owner],
        base_model=tiny_model["base"],
        adapter=tiny_model["adapter"],
        samples_per_chunk=samples,
        max_new_tokens=max_new_tokens,
    )
    doc = SourceDocument.objects.create(project=project, content_hash=f"h{project.pk}", text="\n".join(SENTENCES), title="헌법")
    chunks = []
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)]
        if long_chunk and i == 1:
            text = "국민의 권리와 의무에 관한 조항을 길게 적는다 " * 200  # far beyond the tiny model's 1,024 positions
        chunks.append(
            Chunk.objects.create(document=doc, chunking_key="k", index=i, text=text, start=0, end=len(text), size=len(text))
        )
    return project, chunks


def wait_for(predicate, timeout=180, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def run_ended(run, timeout=180, what="run to finish"):
    """The run, once it has succeeded or failed."""
    return wait_for(lambda: (r := run_state(run.pk)).status in {"succeeded", "failed"} and r, timeout=timeout, what=what)


def run_state(run_id):
    return GenerationRun.objects.get(pk=run_id)


def assert_exactly_once(run, chunks, samples):
    keys = list(Generation.objects.filter(run=run).values_list("chunk_id", "sample_index"))
    assert sorted(keys) == sorted((c.pk, s) for c in chunks for s in range(samples))
    assert QAPair.objects.filter(generation__run=run).count() == len(keys)
    assert not QAPair.objects.values("generation").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_run_completes_with_provenance(start_worker, owner, tiny_model, client):
    project, chunks = project_with_chunks(owner, tiny_model, 5)
    start_worker(**WORKER_ENV)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=2)
    run = run_ended(run, what="run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.samples_done, run.samples_expected, run.batches_done) == (10, 10, 3)
    assert_exactly_once(run, chunks, 2)
    g = Generation.objects.filter(run=run).first()
    assert g.finish_reason in {"stop", "length"} and g.prompt_tokens > 50 and 1 <= g.completion_tokens <= 12
    assert g.worker.startswith("test-") and g.gpu_name == "cpu" and g.duration_ms is not None and g.seed is not None
    assert g.precision == "float32"  # the tiny model on CPU; bfloat16 (and any FP8) on GPUs
    # The project leaves top-k and top-p to the checkpoint, as the card's call does; the tiny checkpoint sets neither, so
    # the worker used transformers' defaults and recorded them.
    assert run.parameters["top_k"] is None and run.parameters["top_p"] is None
    assert g.sampling == {"temperature": 1.0, "top_k": 50, "top_p": 1.0, "max_new_tokens": 12}
    from django.urls import reverse

    from tests.conftest import PASSWORD

    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("generation:detail", args=[project.slug, run.pk])).content.decode()
    assert "top-k as the checkpoint, top-p as the checkpoint" in page  # asked for
    assert (
        '<dt>Sampling used</dt><dd id="run-sampling-used">temperature 1.0, top-k 50, top-p 1.0</dd>' in page
    )  # what the workers resolved
    assert run.parameters["adapter"] == tiny_model["adapter"] and len(run.parameters["prompt_template_hash"]) == 16
    assert run.started_at and run.finished_at
    # Tokens/s and pairs/hour per worker and GPU, on the page and in the progress JSON.
    [worker] = client.get(reverse("generation:progress", args=[project.slug, run.pk])).json()["workers"]
    tokens = sum(Generation.objects.filter(run=run).values_list("completion_tokens", flat=True))
    assert (worker["worker"], worker["gpu"], worker["pairs"], worker["output_tokens"]) == (g.worker, "cpu", 10, tokens)
    assert worker["tokens_per_second"] > 0 and worker["pairs_per_hour"] > 0
    assert f"<td>{g.worker}</td><td>cpu</td><td>10</td><td>{tokens}</td>" in page


def test_sigkilled_worker_loses_nothing_and_duplicates_nothing(start_worker, owner, tiny_model):
    # Long outputs make each batch take a while, so the kill lands while one is being generated.
    project, chunks = project_with_chunks(owner, tiny_model, 8, samples=2, max_new_tokens=200)
    first = start_worker(**KILL_ENV)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=1)
    batches = GenerationBatch.objects.filter(run=run)
    wait_for(
        lambda: batches.filter(status=BatchStatus.DONE).exists() and batches.filter(status=BatchStatus.RUNNING).exists(),
        what="a batch in flight after a finished one",
    )
    first.kill()
    interrupted = list(batches.filter(status=BatchStatus.RUNNING).values_list("pk", flat=True))
    assert run_state(run.pk).status == RunStatus.RUNNING  # killed in the middle of the run
    start_worker(**KILL_ENV)
    run = run_ended(run, timeout=300, what="run to finish after the crash")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 2)
    # The batch the worker died on was redelivered and claimed again.
    for batch in GenerationBatch.objects.filter(pk__in=interrupted):
        assert batch.status == BatchStatus.DONE and batch.attempts >= 2


def test_worker_killed_mid_batch_keeps_what_it_stored(start_worker, owner, tiny_model):
    """Samples are stored as they finish: a worker killed in the middle of a batch loses only the samples it had not
    stored; the retry generates the rest, and the run still has every (chunk, sample) exactly once."""
    project, chunks = project_with_chunks(owner, tiny_model, 6, samples=2, max_new_tokens=120)
    env = KILL_ENV | {"GENERATION_BACKEND": "slots", "GENERATION_MAX_BATCH": "4", "GENERATION_SAVE_EVERY": "1"}
    first = start_worker(**env)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=6)  # one batch of 12 samples
    stored = Generation.objects.filter(run=run)
    wait_for(lambda: stored.exists(), what="the first stored samples")
    first.kill()
    kept = dict(stored.values_list("pk", "created_at"))
    batch = GenerationBatch.objects.get(run=run)
    assert batch.status == BatchStatus.RUNNING and 0 < len(kept) < 12  # killed with part of the batch stored
    start_worker(**env)
    run = run_ended(run, timeout=300, what="run to finish after the crash")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 2)
    assert dict(Generation.objects.filter(pk__in=kept).values_list("pk", "created_at")) == kept  # kept, not redone
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE and batch.attempts >= 2


def test_a_worker_takes_the_next_batch_over_while_its_batch_finishes(start_worker, owner, tiny_model):
    """No tail between batches: while a batch's last sequences run, the worker claims the run's next batch and fills
    the free slots with it; each batch is claimed once, ends done, and every (chunk, sample) exists once."""
    project, chunks = project_with_chunks(owner, tiny_model, 6, samples=2, max_new_tokens=40)
    start_worker(**WORKER_ENV | {"GENERATION_BACKEND": "slots", "GENERATION_MAX_BATCH": "4"})
    run = generation_run_create(project=project, created_by=owner, batch_chunks=2)  # 3 batches of 4 samples
    run = run_ended(run, timeout=300, what="run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 2)
    batches = list(GenerationBatch.objects.filter(run=run).order_by("index"))
    assert all(b.status == BatchStatus.DONE and b.attempts == 1 for b in batches)
    # Each later batch was claimed before the one before it was done: taken over, not waited for.
    assert all(later.claimed_at < earlier.finished_at for earlier, later in zip(batches, batches[1:]))


def test_worker_killed_while_holding_two_batches_loses_and_duplicates_nothing(start_worker, owner, tiny_model):
    """SIGKILL while a batch and the one taken over from it are both held: both are claimed again (by their own
    messages once the heartbeats are stale), and the run ends with every (chunk, sample) exactly once."""
    project, chunks = project_with_chunks(owner, tiny_model, 8, samples=2, max_new_tokens=200)
    env = KILL_ENV | {"GENERATION_BACKEND": "slots", "GENERATION_MAX_BATCH": "4", "GENERATION_SAVE_EVERY": "1"}
    first = start_worker(**env)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=2)  # 4 batches of 4 samples
    batches = GenerationBatch.objects.filter(run=run)
    wait_for(lambda: batches.filter(status=BatchStatus.RUNNING).count() >= 2, what="two batches held at once")
    first.kill()
    held = list(batches.filter(status=BatchStatus.RUNNING).values_list("pk", flat=True))
    assert len(held) >= 2
    start_worker(**env)
    run = run_ended(run, timeout=300, what="run to finish after the crash")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 2)
    for batch in GenerationBatch.objects.filter(pk__in=held):
        assert batch.status == BatchStatus.DONE and batch.attempts >= 2


def test_cancelled_run_stops_dispatching(start_worker, owner, tiny_model):
    project, chunks = project_with_chunks(owner, tiny_model, 6)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=1)
    generation_run_cancel(run=run)
    worker = start_worker(**WORKER_ENV)
    # The worker drains the six messages of the cancelled run; each is a no-op.
    from workbench.celery import app

    wait_for(lambda: not _queue_length(app), what="the gpu queue to drain")
    assert worker.proc.poll() is None
    assert not Generation.objects.filter(run=run).exists()
    assert set(GenerationBatch.objects.filter(run=run).values_list("status", flat=True)) == {BatchStatus.CANCELLED}
    assert run_state(run.pk).status == RunStatus.CANCELLED


def test_cancelling_a_running_batch_stops_its_worker_and_resuming_generates_only_the_rest(start_worker, owner, tiny_model):
    """Cancel stops the batch being generated, not only the queued ones: its worker stops at its next store and is free
    for other work; what it stored stays, and resuming the run generates only the rest, each (chunk, sample) once."""
    from workbench.generation.services import generation_run_retry

    project, chunks = project_with_chunks(owner, tiny_model, 6, samples=2, max_new_tokens=120)
    worker = start_worker(
        **WORKER_ENV | {"GENERATION_BACKEND": "slots", "GENERATION_MAX_BATCH": "4", "GENERATION_SAVE_EVERY": "1"}
    )
    run = generation_run_create(project=project, created_by=owner, batch_chunks=6)  # one batch of 12 samples
    stored = Generation.objects.filter(run=run)
    wait_for(lambda: stored.exists(), what="the first stored samples")
    generation_run_cancel(run=run)
    wait_for(lambda: "stopped: batch" in worker.log_text(), what="the worker to stop the cancelled batch")
    kept = dict(stored.values_list("pk", "created_at"))
    assert 0 < len(kept) < 12  # stopped with part of the batch stored
    time.sleep(2)
    assert stored.count() == len(kept)  # nothing more after the stop
    batch = GenerationBatch.objects.get(run=run)
    assert batch.status == BatchStatus.CANCELLED and run_state(run.pk).status == RunStatus.CANCELLED
    assert worker.proc.poll() is None and "Traceback" not in worker.log_text()
    generation_run_retry(run=run_state(run.pk))
    run = run_ended(run, timeout=300, what="the resumed run to finish")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert_exactly_once(run, chunks, 2)
    assert dict(Generation.objects.filter(pk__in=kept).values_list("pk", "created_at")) == kept  # kept, not redone


def _queue_length(app) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen("gpu")


def test_admin_starts_a_run(client, owner, tiny_model):
    from django.urls import reverse

    from tests.conftest import PASSWORD

    project, _ = project_with_chunks(owner, tiny_model, 2)
    client.login(username=owner.username, password=PASSWORD)
    response = client.post(reverse("admin:generation_start_run"), {"project": project.pk}, follow=True)
    run = GenerationRun.objects.get(project=project)
    assert run.created_by == owner and run.batches_total == 1 and run.samples_expected == 4
    assert f"Run {run.pk} started" in response.content.decode()


def test_cancel_and_retry_from_the_run_page(client, owner, reviewer, tiny_model):
    from django.urls import reverse

    from tests.conftest import PASSWORD

    project, _ = project_with_chunks(owner, tiny_model, 2)
    run = generation_run_create(project=project, created_by=owner, batch_chunks=1)
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.post(reverse("generation:cancel", args=[project.slug, run.pk])).status_code == 404  # not a member here
    client.login(username=owner.username, password=PASSWORD)
    body = client.post(reverse("generation:cancel", args=[project.slug, run.pk]), follow=True).content.decode()
    assert f"Run {run.pk} cancelled" in body and run_state(run.pk).status == RunStatus.CANCELLED
    again = client.post(reverse("generation:cancel", args=[project.slug, run.pk]), follow=True).content.decode()
    assert "only queued or running runs can be cancelled" in again
    client.post(reverse("generation:retry", args=[project.slug, run.pk]))
    assert run_state(run.pk).status == RunStatus.RUNNING
    assert set(GenerationBatch.objects.filter(run=run).values_list("status", flat=True)) == {BatchStatus.QUEUED}
