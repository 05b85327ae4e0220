"""`manage.py export_dataset --project SLUG --format FORMAT --out PATH`: export approved pairs for fine-tuning."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from workbench.exports.formats import FORMATS
from workbench.exports.services import ExportOptions, export_write
from workbench.projects.models import Project


class Command(BaseCommand):
    help = "Export the project's approved pairs (one snapshot) as files plus manifest.json into the PATH folder."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, metavar="PATH", help="folder for train/validation files and manifest.json")
        parser.add_argument(
            "--statuses",
            default="approved,edited",
            help="comma-separated: approved, edited, rejected, pending (the last two are not reviewed training data: "
            "for an audit or a reward model)",
        )
        parser.add_argument("--grounded", action="store_true", help="put the source chunk in the prompt")
        parser.add_argument("--metadata", action="store_true", help="add document, chunk, run, adapter, flags, reviewer columns")
        parser.add_argument("--validation-percent", type=int, default=0, help="share of documents in the validation split")

    def handle(self, *args, project, format, out, statuses, grounded, metadata, validation_percent, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}.")
        try:
            opts = ExportOptions(
                statuses=tuple(s.strip() for s in statuses.split(",") if s.strip()),
                grounded=grounded,
                metadata=metadata,
                validation_percent=validation_percent,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise CommandError(f"--out {out} is a file; give a folder (new or empty) for the export's files.")
        if folder.is_dir() and any(folder.iterdir()):
            # Files of an earlier export beside this one's manifest would be read as part of it.
            raise CommandError(f"--out {out} is not empty; give a new or empty folder, so no earlier file is mixed in.")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"Cannot create {out}: {exc.strerror}") from None
        unreviewed = sorted(set(opts.statuses) & {"rejected", "pending"})
        if unreviewed and format != "dpo":
            self.stderr.write(f"Note: the export includes {' and '.join(unreviewed)} pairs, as --statuses asks.")
        manifest = export_write(project=target, fmt=format, options=opts, out_dir=folder)
        for f in manifest["files"]:
            self.stdout.write(f"{f['file']}: {f['rows']} rows, sha256 {f['sha256']}")
        for warning in manifest.get("warnings", []):
            self.stderr.write(f"Warning: {warning}")
        self.stdout.write(f"manifest.json written to {out}")
