from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from workbench.documents.forms import DocumentUploadForm
from workbench.documents.importers import FieldMap
from workbench.documents.models import Chunk, SourceDocument
from workbench.documents.services import DeletionRefused, documents_delete, documents_import, import_job_create
from workbench.projects.access import require_some_project_admin
from workbench.projects.admin_scope import ProjectScopedAdmin
from workbench.projects.models import Project


class AdminImportForm(DocumentUploadForm):
    project = forms.ModelChoiceField(queryset=Project.objects.all())
    field_order = ["project", "files"]

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects


@admin.register(SourceDocument)
class SourceDocumentAdmin(ProjectScopedAdmin):
    list_display = ["title", "project", "origin_filename", "origin_locator", "created_at"]
    list_filter = ["project"]
    search_fields = ["title", "external_id", "origin_filename"]
    readonly_fields = ["content_hash", "origin_sha256", "origin_size", "origin_locator", "created_at"]
    change_list_template = "admin/documents/sourcedocument/change_list.html"

    def has_add_permission(self, request):
        return False  # documents come in through the import (hashing, normalising, chunking)

    # Deleting goes through the service, which removes what was made from the documents first (chunks are protected
    # while pairs and generations hold them); the confirmation page lists what goes, and refuses during a live run.
    def get_deleted_objects(self, objs, request):
        from workbench.documents.services import deletion_counts, deletion_summary, live_run_message, too_large_message

        ids = [o.pk for o in objs]
        deleted, counts = deletion_summary(documents=SourceDocument.objects.filter(pk__in=ids))
        refused = [m for m in {live_run_message(project=o.project) for o in objs} if m]
        for project in {o.project for o in objs}:
            mine = SourceDocument.objects.filter(pk__in=ids, project=project)
            refused.append(too_large_message(project=project, counts=deletion_counts(documents=mine)))
        return deleted, counts, set(), [m for m in refused if m]

    def delete_model(self, request, obj):
        try:
            documents_delete(project=obj.project, document_ids=[obj.pk])
        except DeletionRefused as exc:  # a run started since the confirmation page
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for project_id in set(queryset.values_list("project_id", flat=True)):
            project = Project.objects.get(pk=project_id)
            try:
                documents_delete(project=project, document_ids=queryset.filter(project=project).values_list("pk", flat=True))
            except DeletionRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_view), name="documents_import")] + super().get_urls()

    def import_view(self, request):
        projects = require_some_project_admin(request)  # staff alone may not import into any project
        form = AdminImportForm(request.POST or None, request.FILES or None, projects=projects)
        if request.method == "POST" and form.is_valid():
            project, uploads = form.cleaned_data["project"], form.cleaned_data["files"]
            fields = FieldMap(
                text=form.cleaned_data["text_field"], title=form.cleaned_data["title_field"], id=form.cleaned_data["id_field"]
            )
            if sum(f.size for f in uploads) > settings.DOCUMENTS_INLINE_MAX_BYTES:
                job = import_job_create(project=project, uploads=uploads, fields=fields, created_by=request.user)
                self.message_user(
                    request,
                    f"Import {job.pk} of {len(uploads)} file(s) started in the background; its report "
                    f"appears on the Documents page of {project.name}.",
                )
                return redirect("admin:documents_sourcedocument_changelist")
            report = documents_import(project=project, files=((f.name, f.read()) for f in uploads), fields=fields)
            for f in report.files:
                if f.status == "failed":
                    where = f" ({f.locator})" if f.locator else ""
                    self.message_user(
                        request, f"{f.name}{where}: {f.error}. Nothing from this file was imported.", messages.ERROR
                    )
                else:
                    self.message_user(
                        request,
                        f.summary(),
                    )
            return redirect("admin:documents_sourcedocument_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import documents", "opts": self.model._meta}
        return TemplateResponse(request, "admin/documents/import.html", context)


class ViewOnlyAdmin(ProjectScopedAdmin):
    """Records the product writes through its services (a pair's text, status and version change only through a
    review decision, which keeps its history and catches conflicts): the admin shows them, and changes none."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Chunk)
class ChunkAdmin(ViewOnlyAdmin):
    project_lookup = "document__project"
    list_display = ["document", "index", "start", "end", "size", "is_current"]
    list_filter = ["is_current", "document__project"]
    readonly_fields = [f.name for f in Chunk._meta.fields]
