"""A real Celery worker on the `gpu` queue for `benchmarks/pipeline.py`, with the random model's stand-in installed
(`pipeline_standin.py`): the same command as the README's GPU worker, `-Q gpu --concurrency 1 --pool solo`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

import pipeline_standin  # noqa: E402

pipeline_standin.install()

from workbench.celery import app  # noqa: E402

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "gpu0"
    app.worker_main(
        [
            "worker",
            "-Q",
            "gpu",
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
