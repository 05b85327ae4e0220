"""Deleting a large project: `project_delete` (each table in one DELETE, leaves first) beside Django's collector (the
rows loaded as model instances, then deleted in batches: what `QuerySet.delete()` does), each in its own process on
its own copy of the same project, with seconds and peak memory.

The project: `--pairs` pairs on 1,000 chunks of 1,000 documents, one generation each, five question bands a pair, a
flag on every fourth pair and a review decision on every tenth.

    python benchmarks/delete.py [--pairs 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from _django import seed_chunks, setup

DB = "workbench_bench_delete"


def seed(slug: str, pairs: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from workbench.generation.models import GenerationRun
    from workbench.projects.services import project_create

    user, _ = get_user_model().objects.get_or_create(username="bench-reviewer")
    project = project_create(slug=slug, name=slug, admins=[user])
    run = GenerationRun.objects.create(project=project, status="succeeded")
    rng = random.Random(3)
    chunks = seed_chunks(project, prefix=f"{slug}-")
    with connection.cursor() as cursor:
        q, a = "대한민국의 주권은 누구에게 있나요?", "대한민국의 주권은 국민에게 있습니다."
        with cursor.copy(
            "COPY generation_generation (run_id, chunk_id, sample_index, raw_text, finish_reason, completion_tokens, "
            "worker, gpu_name, precision, sampling, created_at) FROM STDIN"
        ) as copy:
            for i in range(pairs):
                copy.write_row(
                    (run.pk, chunks[i % 1000], i // 1000, f"[[Q]] {q}\n[[A]] {a}", "stop", 20, "w", "", "bf16", "{}", "now()")
                )
        cursor.execute("SELECT id, chunk_id FROM generation_generation WHERE run_id = %s ORDER BY id", [run.pk])
        generations = cursor.fetchall()
        with cursor.copy(
            "COPY generation_qapair (project_id, chunk_id, generation_id, question, answer, original_question, "
            "original_answer, status, flags, is_flagged, shuffle_key, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i, (generation, chunk) in enumerate(generations):
                status = "rejected" if i % 10 == 0 else "pending"
                copy.write_row(
                    (project.pk, chunk, generation, f"{q} ({i})", a, q, a, status, "[]", i % 4 == 0, rng.randrange(2**31), 1, "now()", "now()")
                )  # fmt: skip
        cursor.execute("SELECT id FROM generation_qapair WHERE project_id = %s ORDER BY id", [project.pk])
        ids = [r[0] for r in cursor.fetchall()]
        with cursor.copy("COPY quality_questionband (project_id, pair_id, band, hash) FROM STDIN") as copy:
            for pk in ids:
                for band in range(5):
                    copy.write_row((project.pk, pk, band, rng.randrange(2**62)))
        with cursor.copy(
            "COPY quality_pairflag (pair_id, name, severity, score, reason, details, created_at) FROM STDIN"
        ) as copy:
            for pk in ids[::4]:
                copy.write_row((pk, "echo", "warning", 0.5, "copied", "{}", "now()"))
        with cursor.copy(
            "COPY review_reviewdecision (pair_id, reviewer_id, decision, question_before, answer_before, question_after, "
            "answer_after, status_before, status_after, reason, version_before, is_bulk, created_at) FROM STDIN"
        ) as copy:
            for pk in ids[::10]:
                copy.write_row((pk, user.pk, "reject", q, a, q, a, "pending", "rejected", "", 1, False, "now()"))
        cursor.execute("ANALYZE")


def collector_delete(project) -> None:
    """Django's collector, in the order the chunks' protection needs (pairs and generations before the chunks)."""
    from workbench.documents.models import SourceDocument
    from workbench.generation.models import Generation, QAPair

    documents = SourceDocument.objects.filter(project=project)
    QAPair.objects.filter(chunk__document__in=documents).delete()
    Generation.objects.filter(chunk__document__in=documents).delete()
    documents.delete()
    project.delete()


def child(slug: str, how: str) -> dict:
    import django

    django.setup()
    from django.db import connection, transaction

    from workbench.documents.services import project_delete
    from workbench.projects.models import Project

    project = Project.objects.get(slug=slug)
    statements = []

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((time.perf_counter() - began, sql[:90]))

    start = time.perf_counter()
    with connection.execute_wrapper(timed), transaction.atomic():
        project_delete(project=project) if how == "workbench" else collector_delete(project)
    seconds = time.perf_counter() - start
    if os.environ.get("BENCH_STATEMENTS"):
        for took, sql in sorted(statements, reverse=True)[:8]:
            print(f"{took:6.2f} s  {sql}", file=sys.stderr)
    assert not Project.objects.filter(slug=slug).exists()
    return {"how": how, "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--child", nargs=2, metavar=("SLUG", "HOW"))
    args = parser.parse_args()
    if args.child:
        os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
        print(json.dumps(child(*args.child)))
        return
    t0 = time.perf_counter()
    setup(DB)
    for slug in ("workbench", "collector"):
        seed(slug, args.pairs)
    print(f"seeded two projects of {args.pairs:,} pairs in {time.perf_counter() - t0:.0f} s", flush=True)
    env = os.environ | {"BENCH_DATABASE_URL": os.environ["DATABASE_URL"]}
    for how in ("workbench", "collector"):
        result = subprocess.run(
            [sys.executable, __file__, "--child", how, how], env=env, capture_output=True, text=True, cwd=Path(__file__).parent
        )
        if result.returncode or os.environ.get("BENCH_STATEMENTS"):
            print(result.stderr[-3000:])
        if result.returncode:
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        label = "project_delete (one DELETE a table)" if how == "workbench" else "Django's collector (the code before)"
        print(f"{label:40} {args.pairs:>9,} pairs  {row['seconds']:7.1f} s  peak RSS {row['peak_rss_mb']:6.0f} MB", flush=True)


if __name__ == "__main__":
    main()
