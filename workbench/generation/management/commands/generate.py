"""`manage.py generate --project SLUG [--wait]`: start a generation run on the project's current chunks."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from workbench.generation.models import GenerationRun, RunStatus
from workbench.generation.selectors import run_progress
from workbench.generation.services import generation_run_create
from workbench.projects.models import Project


class Command(BaseCommand):
    help = "Start a generation run (GPU workers on the `gpu` queue do the work); --wait follows it to the end."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--wait", action="store_true", help="Print progress until the run ends; exit 1 if it fails.")
        parser.add_argument("--batch-chunks", type=int, default=None, help="Chunks per batch task.")

    def handle(self, *args, project, wait, batch_chunks, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}.")
        try:
            run = generation_run_create(project=target, batch_chunks=batch_chunks)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if run.status == RunStatus.DISPATCH_FAILED:
            # Not a failure to start again: the run exists and the dispatch sweep sends it once the broker answers.
            self.stderr.write(f"Run {run.pk} is created but not started yet. {run.error} Do not start it again.")
        self.stdout.write(
            f"Run {run.pk}: {run.samples_expected} samples from {run.chunk_count} chunks in {run.batches_total} batches."
        )
        if not wait:
            return
        last = None
        while True:
            run = GenerationRun.objects.get(pk=run.pk)
            p = run_progress(run=run)
            line = f"  {p['status']}: {p['samples_done']}/{p['samples_expected']} ({p['percent']}%)"
            if line != last:
                self.stdout.write(line)
                last = line
            if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.DISPATCH_FAILED):
                break
            time.sleep(0.5)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run {run.pk} {run.status}: {run.error}")
