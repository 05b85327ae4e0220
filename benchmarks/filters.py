"""Filter throughput: the full per-pair filter set on one core, and corpus-wide duplicate detection over 1,000,000
questions (`DuplicateIndex`: candidates by keys of content morphemes, Kiwi cached per word, verified exactly), side by
side with the naive baseline (all-pairs comparison, on a sample).

    python benchmarks/filters.py [--questions 1000000] [--naive 10000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")


def per_pair(cases, repeat: int, *, grouped: bool) -> float:
    """grouped: the samples of a chunk arrive together, as a generation batch saves them; otherwise every pair comes
    from another chunk than the one before (no reuse of the chunk's index)."""
    from workbench.quality.filters import assess

    work = cases * repeat
    if grouped:
        work.sort(key=lambda c: c["source"])
    start = time.process_time()
    for case in work:
        assess(case["source"], case["output"], finish_reason=case["finish_reason"])
    return len(work) / (time.process_time() - start)


def questions(n: int, rng: random.Random) -> list[str]:
    """Questions in the model's style: templates around subjects taken from the Korean test documents (tests/fixtures/korean), with paraphrases."""
    import json

    from quality_eval import SHARED, TEMPLATES

    premises = sorted({r["premise"] for r in json.loads((SHARED / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))})
    words = sorted({w for p in premises for w in p.split() if len(w) >= 2})
    out = []
    for _ in range(n):
        subject = " ".join(rng.sample(words, rng.randint(2, 4)))
        q = rng.choice(TEMPLATES).format(t=subject)
        if out and rng.random() < 0.05:  # a paraphrase of an earlier question
            q = rng.choice(out).rstrip("?.") + "?"
        out.append(q)
    return out


def corpus_duplicates(qs: list[str]) -> tuple[float, float, int]:
    from workbench.quality.filters import DuplicateIndex

    index = DuplicateIndex()
    found = 0
    start, cpu = time.perf_counter(), time.process_time()
    for i, q in enumerate(qs):
        hit, _ = index.check_and_add(i, q)
        found += hit is not None
    return time.perf_counter() - start, time.process_time() - cpu, found


def naive_duplicates(qs: list[str]) -> tuple[float, int]:
    from workbench.quality.filters import jaccard, shingles

    start = time.perf_counter()
    seen: list[set[str]] = []
    found = 0
    for q in qs:
        grams = shingles(q)
        found += any(jaccard(grams, other) >= 0.9 for other in seen)
        seen.append(grams)
    return time.perf_counter() - start, found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=10_000)
    args = parser.parse_args()
    import django

    django.setup()
    from quality_eval import build_cases

    cases = build_cases()
    from workbench.quality.korean import analyse_word

    analyse_word.cache_clear()
    rate = per_pair(cases, 1, grouped=False)
    print(
        f"per-pair filters, first pass with an empty word cache (Kiwi analyses every new word): {rate:,.0f} pairs/s over {len(cases):,} pairs"
    )
    for grouped in (True, False):
        rate = per_pair(cases, 20, grouped=grouped)
        order = "samples of a chunk together" if grouped else "every pair from another chunk"
        print(
            f"per-pair filters (malformed, truncated, echo, language, repetition, unsupported), one core, {order}: "
            f"{rate:,.0f} pairs/s over {len(cases) * 20:,} pairs"
        )
    rng = random.Random(3)
    qs = questions(args.questions, rng)
    naive_s, naive_found = naive_duplicates(qs[: args.naive])
    print(
        f"naive all-pairs duplicates, first {args.naive:,} questions: {naive_s:.1f} s ({naive_found:,} duplicates); "
        f"quadratic, so 1,000,000 would take about {naive_s * (args.questions / args.naive) ** 2 / 3600:,.0f} h"
    )
    lsh_small, _, lsh_small_found = corpus_duplicates(qs[: args.naive])
    print(f"DuplicateIndex, same {args.naive:,} questions: {lsh_small:.1f} s ({lsh_small_found:,} duplicates)")
    from workbench.quality.korean import _word_terms, analyse_word, question_terms

    for cache in (analyse_word, _word_terms, question_terms):  # cold: Kiwi analyses every word again
        cache.cache_clear()
    seconds, cpu, found = corpus_duplicates(qs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # On a shared machine the wall time counts other processes' turns; the CPU time is this process's own.
    print(
        f"DuplicateIndex, {len(qs):,} questions: {seconds:.0f} s wall, {cpu:.0f} s CPU ({len(qs) / cpu:,.0f} questions per "
        f"CPU second), {found:,} duplicates, peak RSS {peak:,.0f} MB, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
