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
        files, hidden = [], 0
        for path in map(Path, paths):
            if path.is_dir():
                # A folder's hidden files and folders (.DS_Store, .git/...) are not documents: skipped, and counted.
                found = [p for p in sorted(path.rglob("*")) if p.is_file()]
                shown = [p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts)]
                hidden += len(found) - len(shown)
                if not shown:
                    raise CommandError(f"No file to import in {path}" + (f" ({len(found)} hidden)." if found else "."))
                files.extend(shown)
            elif path.is_file():
                files.append(path)
            elif path.exists():
                raise CommandError(f"Not a regular file: {path}")
            else:
                raise CommandError(f"No such file: {path}")
        if hidden:
            self.stdout.write(f"Skipped {hidden} hidden file{pluralize(hidden)} (names starting with a dot).")
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
