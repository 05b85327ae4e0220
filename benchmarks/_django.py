"""Set up Django for a benchmark against its own PostgreSQL database (created and migrated if missing)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT / "tests" / "fixtures" / "korean"


def setup(database: str = "workbench_bench") -> None:
    sys.path.insert(0, str(ROOT))
    server = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
    import psycopg

    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")
    os.environ["DATABASE_URL"] = f"{server}/{database}"
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
    # Production settings: with DEBUG on, Django keeps every SQL statement in memory.
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 50)
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SEED_TEXT = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다. " * 8


def seed_chunks(project, count: int = 1000, *, prefix: str = "d") -> list[int]:
    """`count` documents of the project, one chunk each (SEED_TEXT); the chunks' ids."""
    from workbench.documents.models import Chunk, SourceDocument

    text = SEED_TEXT
    chunks = []
    for d in range(count):
        doc = SourceDocument.objects.create(project=project, content_hash=f"{prefix}{d}", text=text, title=f"문서 {d}")
        chunks.append(
            Chunk.objects.create(document=doc, chunking_key="k", index=0, text=text, start=0, end=len(text), size=len(text)).pk
        )
    return chunks
