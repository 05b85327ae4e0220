"""Export 1,000,000 approved pairs from PostgreSQL to messages JSONL and to Parquet; print seconds, rows/s and peak
memory of each export (each runs in its own process, so its peak is its own), with the naive baseline (the whole
queryset loaded into memory and written with json.dump) on the JSONL format.

    python benchmarks/export.py [--pairs 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _django import seed_chunks, setup

DB = "workbench_bench_export"


def seed(pairs: int) -> None:
    from django.db import connection

    from workbench.projects.services import project_create

    project = project_create(slug="export-bench", name="export bench")
    rng = random.Random(2)
    chunks = seed_chunks(project, prefix="d")
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY generation_qapair (project_id, chunk_id, question, answer, original_question, original_answer, status, "
            "flags, is_flagged, shuffle_key, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(pairs):
                q = f"대한민국의 주권은 누구에게 있으며 권력은 어디에서 나오나요? ({i})"
                a = f"대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나옵니다. 이는 헌법 제1조에 규정되어 있습니다. ({i})"
                copy.write_row(
                    (
                        project.pk,
                        rng.choice(chunks),
                        q,
                        a,
                        q,
                        a,
                        "approved",
                        "[]",
                        False,
                        rng.randrange(2**31),
                        2,
                        "now()",
                        "now()",
                    )
                )
        cursor.execute("ANALYZE generation_qapair")


def run_export(fmt: str, out: Path, naive: bool) -> dict:
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    import django

    django.setup()
    from workbench.exports.services import ExportOptions, export_write
    from workbench.generation.models import QAPair
    from workbench.projects.models import Project

    project = Project.objects.get(slug="export-bench")
    start = time.perf_counter()
    if naive:
        rows = list(QAPair.objects.filter(project=project, status="approved").select_related("chunk").order_by("id"))
        with open(out / "naive.jsonl", "w", encoding="utf-8") as f:
            for p in rows:
                f.write(
                    json.dumps(
                        {"messages": [{"role": "user", "content": p.question}, {"role": "assistant", "content": p.answer}]},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        count = len(rows)
    else:
        manifest = export_write(project=project, fmt=fmt, options=ExportOptions(), out_dir=out)
        count = manifest["counts"]["total"]
    seconds = time.perf_counter() - start
    return {
        "format": fmt,
        "naive": naive,
        "rows": count,
        "seconds": seconds,
        "rows_per_s": count / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "bytes": sum(f.stat().st_size for f in out.iterdir()),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("FORMAT", "OUT", "NAIVE"))
    args = parser.parse_args()
    if args.child:
        fmt, out, naive = args.child
        print(json.dumps(run_export(fmt, Path(out), naive == "1")))
        return
    t0 = time.perf_counter()
    setup(DB)
    seed(args.pairs)
    print(f"seeded {args.pairs:,} approved pairs in {time.perf_counter() - t0:.0f} s", flush=True)
    env = os.environ | {"BENCH_DATABASE_URL": os.environ["DATABASE_URL"]}
    rows = []
    for fmt, naive in (("messages", False), ("parquet", False), ("messages", True)):
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(
                [sys.executable, __file__, "--child", fmt, tmp, "1" if naive else "0"],
                env=env,
                capture_output=True,
                text=True,
                cwd=Path(__file__).parent,
            )
            if result.returncode:
                print(result.stderr[-2000:])
                continue
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print()
    for r in rows:
        label = "naive (load all, json.dump)" if r["naive"] else f"workbench {r['format']}"
        print(
            f"{label:30} {r['rows']:>9,} rows  {r['seconds']:6.1f} s  {r['rows_per_s']:9,.0f} rows/s  peak RSS {r['peak_rss_mb']:6.0f} MB  {r['bytes'] / 1e6:7.1f} MB written"
        )


if __name__ == "__main__":
    main()
