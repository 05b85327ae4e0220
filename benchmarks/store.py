"""What a GPU worker spends storing its results, and whether the GPU waits for it.

A batch task stores its samples a few dozen at a time as they finish (raw outputs, parsed pairs, the quality filters with
project-wide duplicate search, the run's progress). This times that work against PostgreSQL for batches of 256 chunks x
3 samples in a project that grows as batches are stored, and then runs one batch task's loop two ways, side by side, with
the engine replaced by a stand-in that yields results at a given GPU rate (a sleep, which releases the GIL as a GPU wait
does): storing inline, as the loop did before, and storing on the task's writer thread while generation goes on.
A third part gives the stand-in a step that needs the GIL, as the real engine's does between GPU steps, and times it
alone and beside the writer thread: how much of the GPU's time the storing takes back through the GIL.

    python benchmarks/store.py [--batches 6] [--gpu-ms-per-sample 20]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path

from _django import SHARED_DATA, setup

DB = "workbench_bench_store"


def korean_chunks(n: int, size: int = 1200) -> list[tuple[str, str]]:
    texts = [(p.stem, p.read_text(encoding="utf-8")) for p in sorted((SHARED_DATA / "kobill").glob("*.txt"))]
    texts.append(("constitution", (SHARED_DATA / "constitution.txt").read_text(encoding="utf-8")))
    chunks = []
    while len(chunks) < n:
        for title, text in texts:
            for start in range(0, max(1, len(text) - size), size):
                chunks.append((title, text[start : start + size]))
    return chunks[:n]


def output_for(text: str, rng: random.Random) -> tuple[str, str, int]:
    """A model-like output for a chunk: mostly a clean pair; some echo the text, some are cut off, some lack [[A]]."""
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if len(s.strip()) > 10] or [text[:80]]
    pick = rng.choice(sentences)
    roll = rng.random()
    if roll < 0.1:
        return f"[[Q]] {text[:600]}", "length", 256
    if roll < 0.15:
        return f"[[Q]] {pick} 무엇인가요?", "stop", 40
    answer = " ".join(rng.sample(sentences, min(3, len(sentences))))
    return f"[[Q]] {pick[:60]}에 대해 설명해 주세요. [[A]] {answer}", "stop", rng.randint(60, 256)


def seed(chunks: int):
    from workbench.documents.models import Chunk, SourceDocument
    from workbench.projects.services import project_create

    project = project_create(slug="store-bench", name="store bench")
    ids = []
    for i, (title, text) in enumerate(korean_chunks(chunks)):
        doc = SourceDocument.objects.create(project=project, content_hash=f"d{i}", text=text, title=title)
        ids.append(
            Chunk.objects.create(document=doc, chunking_key="k", index=0, text=text, start=0, end=len(text), size=len(text))
        )
    return project, ids


def results_for(batch, rng: random.Random):
    from workbench.generation import services as generation
    from workers.engine import SampleResult

    out = []
    for chunk, sample_index in generation.batch_missing_samples(batch=batch):
        text, reason, tokens = output_for(chunk.text, rng)
        out.append(
            SampleResult(
                key=(chunk.pk, sample_index, batch.pk),
                text=text,
                token_ids=[],
                finish_reason=reason,
                prompt_tokens=600,
                completion_tokens=tokens,
                duration_ms=1000,
            )
        )
    return out


def through_writer(tasks, batch, results, engine) -> None:
    """One batch task's loop as the worker runs it: the engine's results handed to the writer thread as they come."""
    with tasks.Writer(seed=1, worker="bench", device_name="stand-in", precision="bfloat16", sampling={}) as writer:
        writer.expect(batch, len(results))
        for _index, result in engine.generate_stream(None, None):
            writer.add(result)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=6, help="batches of 256 chunks x 3 samples, stored one after another")
    parser.add_argument(
        "--gpu-ms-per-sample",
        type=float,
        default=20.0,
        help="the stand-in engine's rate (20 ms: 256-token answers at about 12,800 tokens/s)",
    )
    parser.add_argument(
        "--step-ms",
        type=float,
        default=25.8,
        help="third part: a decode step's GPU time (256 slots at about 9,900 tokens/s, the H100 end-to-end run's engine)",
    )
    parser.add_argument(
        "--step-python-ms",
        type=float,
        default=1.0,
        help="third part: the Python a step needs, holding the GIL, before the GPU's next step is queued",
    )
    args = parser.parse_args()
    setup(DB)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from django.conf import settings

    from workbench.generation import services as generation
    from workbench.generation.models import GenerationBatch
    from workers import tasks

    size = 256
    project, chunks = seed(size * (args.batches + 4))
    run = generation.generation_run_create(project=project, batch_chunks=size)
    batches = list(GenerationBatch.objects.filter(run=run).order_by("index"))
    rng = random.Random(5)
    every = settings.GENERATION_SAVE_EVERY
    print(f"store cost, {size} chunks x 3 samples a batch, saved {every} at a time (PostgreSQL on this machine):", flush=True)
    per_sample = []
    for batch in batches[: args.batches]:
        batch = generation.batch_claim(batch_id=batch.pk, worker="bench")
        results = results_for(batch, rng)
        saves = []
        for start in range(0, len(results), every):
            began = time.perf_counter()
            tasks._store(batch, results[start : start + every], 1, "bench", "stand-in", "bfloat16", {})
            saves.append(time.perf_counter() - began)
        generation.batch_finish(batch_id=batch.pk)
        per_sample.append(sum(saves) / len(results))
        print(
            f"  batch {batch.index}: {len(results)} samples stored in {sum(saves):.2f} s: {sum(saves) / len(results) * 1000:.2f} ms "
            f"a sample, a save of {every} median {statistics.median(saves) * 1000:.0f} ms",
            flush=True,
        )

    # One batch task's loop, with a stand-in engine yielding at the GPU's rate: inline stores vs the writer thread.
    gpu = args.gpu_ms_per_sample / 1000

    class StandIn:
        def __init__(self, results):
            self.results = results

        def generate_stream(self, requests, sampling):
            for i, result in enumerate(self.results):
                time.sleep(gpu)  # the GPU's time for this sample; a GPU wait releases the GIL too
                yield i, result

    for mode, batch in zip(("inline", "writer thread"), batches[args.batches : args.batches + 2]):
        batch = generation.batch_claim(batch_id=batch.pk, worker="bench")
        results = results_for(batch, rng)
        engine = StandIn(results)
        began = time.perf_counter()
        if mode == "inline":
            pending = []
            for _index, result in engine.generate_stream(None, None):
                pending.append(result)
                if len(pending) >= every:
                    tasks._store(batch, pending, 1, "bench", "stand-in", "bfloat16", {})
                    pending = []
            if pending:
                tasks._store(batch, pending, 1, "bench", "stand-in", "bfloat16", {})
        else:
            through_writer(tasks, batch, results, engine)
        seconds = time.perf_counter() - began
        generation.batch_finish(batch_id=batch.pk)
        busy = len(results) * gpu
        print(
            f"batch task loop, {mode}: {len(results)} samples in {seconds:.2f} s against {busy:.2f} s of stand-in GPU time: "
            f"the GPU busy {busy / seconds:.0%} of the task",
            flush=True,
        )

    # The engine needs the GIL too: between two GPU steps it runs Python (sampling bookkeeping, queuing the next step)
    # while the writer thread stores, and each step waits for the GIL first. A stand-in whose step is a GIL-free wait
    # (the GPU) and then `--step-python-ms` of Python, yielding results at the run's rate (a sample every 157 tokens
    # on average over 256 slots), with and without the writer storing beside it, on the same number of steps.
    step, python = args.step_ms / 1000, args.step_python_ms / 1000
    per_step = 256 / 157

    def python_work(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    class SteppedStandIn:
        def __init__(self, results):
            self.results = results

        def generate_stream(self, requests, sampling):
            owed, i = 0.0, 0
            while i < len(self.results):
                time.sleep(step)
                python_work(python)
                owed += per_step
                while owed >= 1 and i < len(self.results):
                    owed -= 1
                    yield i, self.results[i]
                    i += 1

    for mode, batch in zip(("engine alone", "engine + writer thread"), batches[args.batches + 2 : args.batches + 4]):
        batch = generation.batch_claim(batch_id=batch.pk, worker="bench")
        results = results_for(batch, rng)
        engine = SteppedStandIn(results)
        steps = -(-len(results) // per_step)
        began = time.perf_counter()
        if mode == "engine alone":
            for _index, _result in engine.generate_stream(None, None):
                pass
        else:
            through_writer(tasks, batch, results, engine)
        seconds = time.perf_counter() - began
        print(
            f"stepped stand-in, {mode}: {len(results)} samples in {seconds:.2f} s, {steps:.0f} steps of {args.step_ms} ms GPU "
            f"+ {args.step_python_ms} ms Python: the GPU busy {steps * step / seconds:.1%} of the task",
            flush=True,
        )


if __name__ == "__main__":
    main()
