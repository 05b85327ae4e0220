"""The storing thread's own time on the embedded default (SQLite): `workers.tasks._store` on the end-to-end benchmark's
outputs, 64 samples a save, timed after a first save (which loads Kiwi and datasketch); `--profile` prints where the
time goes. The tokenizer comes from `pipeline.py build --small`.

    python benchmarks/pipeline.py build --small --model-dir /tmp/pm-small
    python benchmarks/store_sqlite.py --model-dir /tmp/pm-small [--chunks 768] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from pathlib import Path

import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="/tmp/pm-small")
    parser.add_argument("--data-dir", default="/tmp/store-sqlite")
    parser.add_argument("--chunks", type=int, default=768)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    pipeline.django_setup(args)  # a fresh SQLite database under --data-dir
    from workbench.generation import services as generation
    from workbench.generation.models import GenerationBatch
    from workers import tasks
    from workers.engine import SampleResult

    project = pipeline.make_project("store", Path(args.model_dir), args.chunks, random.Random(8), pipeline.corpus_sentences())
    outputs = pipeline.stand_in_outputs(project, random.Random(9))
    run = generation.generation_run_create(project=project, batch_chunks=256)
    work = []
    for batch in GenerationBatch.objects.filter(run=run).order_by("pk"):
        batch = generation.batch_claim(batch_id=batch.pk, worker="bench")
        for chunk, sample in generation.batch_missing_samples(batch=batch):
            text, finish = outputs[chunk.pk][sample]
            result = SampleResult(
                key=(chunk.pk, sample, batch.pk),
                text=text,
                token_ids=[],
                finish_reason=finish,
                prompt_tokens=540,
                completion_tokens=150,
                duration_ms=5000,
            )
            work.append((batch, result))
    saves = [work[i : i + 64] for i in range(0, len(work), 64)]
    args_ = (1, "bench", "cpu", "bfloat16", {"temperature": 1.0})
    tasks._store(saves[0][0][0], [r for _, r in saves[0]], *args_)  # loads Kiwi and datasketch: not timed
    profile = cProfile.Profile() if args.profile else None
    samples = 0
    started, cpu = time.perf_counter(), time.process_time()
    for save in saves[1:]:
        if profile:
            profile.enable()
        tasks._store(save[0][0], [r for _, r in save], *args_)
        if profile:
            profile.disable()
        samples += len(save)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{samples} samples stored, 64 a save: {seconds / samples * 1000:.2f} ms a sample (wall), {cpu / samples * 1000:.2f} ms CPU"
    )
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
