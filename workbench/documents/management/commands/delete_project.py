"""`manage.py delete_project SLUG [--document ID ...]`: delete a project, or some of its documents, with everything made
from them, however large (pages and the admin refuse deletions above DELETE_INLINE_MAX_PAIRS, which would outlast a
request). The same service as the pages: one transaction, refused while a run of the project is live."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workbench.documents.models import SourceDocument
from workbench.documents.services import DeletionRefused, deletion_counts, documents_delete, project_delete
from workbench.projects.models import Project


class Command(BaseCommand):
    help = "Delete a project (or, with --document, some of its documents) and everything made from it."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--document", type=int, action="append", default=[], metavar="ID", help="only this document")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, slug, document, yes, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project with slug {slug!r}.")
        documents = SourceDocument.objects.filter(project=project)
        if document:
            missing = sorted(set(document) - set(documents.filter(pk__in=document).values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"Project {slug} has no document {', '.join(map(str, missing))}.")
            documents = documents.filter(pk__in=document)
        counts = deletion_counts(documents=documents)
        what = f"project {project.name} ({slug})" if not document else f"{counts['documents']:,} documents of {slug}"
        self.stdout.write(
            f"Deleting {what}: {counts['documents']:,} documents, {counts['chunks']:,} chunks, {counts['pairs']:,} pairs "
            f"({counts['reviewed']:,} reviewed), {counts['decisions']:,} review decisions."
        )
        if not yes and input("Type 'yes' to delete them for good: ").strip() != "yes":
            raise CommandError("Nothing deleted.")
        try:
            if document:
                documents_delete(project=project, document_ids=document, inline=False)
            else:
                project_delete(project=project, inline=False)
        except DeletionRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS("Deleted."))
