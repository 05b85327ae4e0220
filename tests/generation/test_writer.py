"""A batch task stores its results on a writer thread while the engine goes on: everything added is stored (also when
generation fails half-way), and a failure to store stops the batch instead of being lost."""

from __future__ import annotations

import sys
import threading

import pytest

from tests.factories import make_project
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation import services as generation
from workbench.generation.models import Generation, GenerationBatch, QAPair
from workers import tasks
from workers.engine import SampleResult


@pytest.fixture
def batch(transactional_db, owner, settings):
    settings.GENERATION_SAVE_EVERY = 4
    project = make_project(admins=[owner], samples_per_chunk=2)
    doc = SourceDocument.objects.create(project=project, content_hash="w", text="대한민국은 민주공화국이다.", title="헌법")
    chunks = [
        Chunk.objects.create(
            document=doc, chunking_key="k", index=i, text=f"대한민국 헌법 제{i}조의 내용이다.", start=0, end=10, size=10
        )
        for i in range(5)
    ]
    run = generation.generation_run_create(project=project, chunks=chunks, batch_chunks=5)
    return generation.batch_claim(batch_id=GenerationBatch.objects.get(run=run).pk, worker="test")


def results(batch):
    return [
        SampleResult(
            key=(chunk.pk, s, batch.pk),
            text=f"[[Q]] 제{chunk.index}조의 {s}번째 질문은 무엇인가요?\n[[A]] 답입니다.",
            token_ids=[],
            finish_reason="stop",
            prompt_tokens=10,
            completion_tokens=8,
            duration_ms=5,
        )
        for chunk, s in generation.batch_missing_samples(batch=batch)
    ]


def writer(batch):
    w = tasks.Writer(seed=1, worker="test", device_name="cpu", precision="float32", sampling={"temperature": 1.0})
    w.expect(batch, len(generation.batch_missing_samples(batch=batch)))
    return w


def test_everything_added_is_stored_on_another_thread(batch):
    stored_on = []
    original = tasks._store
    tasks_store = lambda *a, **k: stored_on.append(threading.current_thread().name) or original(*a, **k)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks, "_store", tasks_store)
        with writer(batch) as w:
            for r in results(batch):
                w.add(r)
    assert Generation.objects.filter(run=batch.run).count() == 10
    assert QAPair.objects.filter(generation__run=batch.run).count() == 10
    assert len(stored_on) == 3 and all(name == "store-results" for name in stored_on)  # 4 + 4 + 2


def test_what_was_generated_before_a_failure_is_stored(batch):
    with pytest.raises(ValueError, match="engine broke"):
        with writer(batch) as w:
            for i, r in enumerate(results(batch)):
                if i == 7:
                    raise ValueError("engine broke")
                w.add(r)
    assert Generation.objects.filter(run=batch.run).count() == 7  # the retry generates the other 3
    assert len(generation.batch_missing_samples(batch=batch)) == 3


def test_a_failure_to_store_stops_the_batch(batch, monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("database went away")

    monkeypatch.setattr(tasks, "_store", failing)
    added = 0
    with pytest.raises(RuntimeError, match="storing the results failed: RuntimeError: database went away"):
        with writer(batch) as w:
            for r in results(batch):
                w.add(r)
                added += 1
                if added == 4:
                    w.thread.join(timeout=10)  # the first save has run (and failed) before the next result comes
    assert calls == [1] and added == 4
    assert Generation.objects.filter(run=batch.run).count() == 0


@pytest.mark.parametrize("interval_us", [500, 2000])
def test_the_writer_hands_the_gil_back_sooner_while_it_runs_and_restores_the_interval_after(batch, settings, interval_us):
    settings.GENERATION_SWITCH_INTERVAL_US = interval_us
    before = sys.getswitchinterval()
    seen = []
    original = tasks._store
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks, "_store", lambda *a, **k: seen.append(sys.getswitchinterval()) or original(*a, **k))
        with pytest.raises(ValueError, match="engine broke"):
            with writer(batch) as w:
                for r in results(batch)[:5]:
                    w.add(r)
                raise ValueError("engine broke")  # restored on the way out of a failure too
    assert seen and all(value == pytest.approx(interval_us / 1e6) for value in seen)
    assert sys.getswitchinterval() == before


def test_interval_zero_leaves_pythons_own(batch, settings):
    settings.GENERATION_SWITCH_INTERVAL_US = 0
    before = sys.getswitchinterval()
    with writer(batch) as w:
        assert sys.getswitchinterval() == before
        for r in results(batch):
            w.add(r)
    assert Generation.objects.filter(run=batch.run).count() == 10
