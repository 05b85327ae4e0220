"""`manage.py import_documents --project SLUG PATH [PATH ...]`: the same import service as the upload form."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from workbench.documents.importers import FieldMap
from workbench.documents.services import documents_import
from workbench.projects.models import Project


class Command(BaseCommand):
    help = "Import documents (txt, md, jsonl, json, csv, pdf, docx, hwp, hwpx, zip) into a project; each file is all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--title-field", default="title")
        parser.add_argument("--id-field", default="id")

    def handle(self, *args, project, paths, text_field, title_field, id_field, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with slug {project!r}.")
        files = []
        for path in map(Path, paths):
            if path.is_dir():
                files.extend(p for p in sorted(path.rglob("*")) if p.is_file())
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"No such file: {path}")
        report = documents_import(
            project=target,
            files=((str(p), p.read_bytes()) for p in files),
            fields=FieldMap(text=text_field, title=title_field, id=id_field),
        )
        for f in report.files:
            if f.status == "failed":
                where = f" ({f.locator})" if f.locator else ""
                self.stderr.write(self.style.ERROR(f"FAILED {f.name}{where}: {f.error}"))
            else:
                self.stdout.write(
                    f"{f.status:9} {f.name}: {f.documents_created} new, {f.documents_existing} already present, "
                    f"{f.chunks_created} chunk{pluralize(f.chunks_created)}" + (f", read as {f.encoding}" if f.encoding else "")
                )
        n, files = report.documents_created, len(report.files)
        self.stdout.write(f"{n} document{pluralize(n)} imported from {files} file{pluralize(files)}.")
        if not report.ok:
            raise CommandError("Some files were not imported (nothing from them was written).")
