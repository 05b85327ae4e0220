"""The hand-over between a worker's batches, step by step against the database: what it claims, what it hands over,
and what a task that fails mid-claim leaves behind."""

from __future__ import annotations

import pytest

from tests.factories import make_project
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation import services as generation
from workbench.generation.models import BatchStatus, GenerationBatch
from workers import heartbeat, tasks
from workers.loading import ModelSpec, load_model


@pytest.fixture(scope="module")
def engine(tiny_model):
    from workers.engine import Engine

    return Engine(load_model(ModelSpec(base_model=tiny_model["base"], adapter=tiny_model["adapter"]), device="cpu"))


@pytest.fixture
def run(transactional_db, owner, tiny_model):
    project = make_project(admins=[owner], samples_per_chunk=2, base_model=tiny_model["base"], adapter=tiny_model["adapter"])
    doc = SourceDocument.objects.create(project=project, content_hash="h", text="대한민국은 민주공화국이다.", title="헌법")
    chunks = [
        Chunk.objects.create(
            document=doc, chunking_key="k", index=i, text=f"대한민국 헌법 제{i}조의 내용이다.", start=0, end=10, size=10
        )
        for i in range(6)
    ]
    return generation.generation_run_create(project=project, chunks=chunks, batch_chunks=2)  # 3 batches


def handover(run, engine, writer, task_id="task-1"):
    import time

    return tasks.Handover(
        run_id=run.pk, worker="w1", task_id=task_id, engine=engine, params=run.parameters, writer=writer,
        until=time.monotonic() + 60,
    )  # fmt: skip


def test_it_claims_the_next_queued_batches_in_order_then_says_nothing_more(run, engine):
    first = generation.batch_claim(batch_id=GenerationBatch.objects.get(run=run, index=0).pk, worker="w1")
    writer = tasks.Writer(seed=1, worker="w1", device_name="cpu", precision="float32", sampling={})
    writer.expect(first, 4)
    more = handover(run, engine, writer)
    requests = more(False) or more(True)  # prepared on its thread: [] while not ready (the caller decodes on), then waited for
    assert [r.key[2] for r in requests] == [GenerationBatch.objects.get(run=run, index=1).pk] * 4
    assert [(r.key[0], r.key[1]) for r in requests[:2]] == [(requests[0].key[0], 0), (requests[0].key[0], 1)]
    assert len(more(True)) == 4  # the third batch
    assert more(True) is None and more(False) is None  # none queued: nothing more, and it stops asking the database
    held = GenerationBatch.objects.filter(run=run, status=BatchStatus.RUNNING, worker="w1", attempts=1)
    assert held.count() == 3 and [b.index for b in more.taken] == [1, 2]
    assert set(writer.batches) == {b.pk for b in held}  # the writer expects each batch's samples
    heartbeat._stop_heartbeat(task_id="task-1")


def test_a_task_that_fails_while_a_claim_is_under_way_releases_what_was_claimed(run, engine):
    """close() waits for the claim in progress, so the batch it took is released with the others instead of being left
    running under a heartbeat that no task will stop."""
    generation.batch_claim(batch_id=GenerationBatch.objects.get(run=run, index=0).pk, worker="w1")
    writer = tasks.Writer(seed=1, worker="w1", device_name="cpu", precision="float32", sampling={})
    more = handover(run, engine, writer, task_id="task-2")
    more(False)  # a claim starts on its thread
    more.close()  # the task failed: the claim under way finishes first
    assert [b.index for b in more.taken] == [1] and more(True) is None
    for taken in more.taken:
        assert generation.batch_release(batch_id=taken.pk, error="engine broke", attempt=taken.attempts)
    heartbeat._stop_heartbeat(task_id="task-2")
    assert not heartbeat._beating.get("task-2")
    statuses = dict(GenerationBatch.objects.filter(run=run).values_list("index", "status"))
    assert statuses == {0: BatchStatus.RUNNING, 1: BatchStatus.QUEUED, 2: BatchStatus.QUEUED}
