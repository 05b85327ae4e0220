"""Document pages: list and upload (admins; large uploads import in the background), chunk preview, re-chunking."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from workbench.documents.chunking import ChunkSettings, ChunkSettingsError, chunk_text
from workbench.documents.forms import ChunkPreviewForm, DocumentUploadForm
from workbench.documents.importers import FieldMap
from workbench.documents.models import ImportJob, SourceDocument
from workbench.documents.selectors import documents_for_project, size_histogram
from workbench.documents.services import (
    DeletionRefused,
    chunk_settings_for,
    deletion_counts,
    documents_delete,
    documents_import,
    import_job_create,
    project_rechunk,
    too_large_message,
)
from workbench.projects.access import get_membership, get_project_for_admin

PREVIEW_CHUNKS_PER_PAGE = 100


@login_required
def document_list(request, slug: str):
    membership = get_membership(request, slug)
    project = membership.project
    page = Paginator(documents_for_project(project=project), 50).get_page(request.GET.get("page"))
    jobs = project.import_jobs.select_related("created_by")[:10] if membership.is_admin else []
    return render(
        request,
        "documents/document_list.html",
        {
            "project": project,
            "membership": membership,
            "page": page,
            "form": DocumentUploadForm(),
            "import_jobs": jobs,
            "inline_max_bytes": django_settings.DOCUMENTS_INLINE_MAX_BYTES,
        },
    )


@login_required
@require_POST
def document_upload(request, slug: str):
    project = get_project_for_admin(request, slug)
    form = DocumentUploadForm(request.POST, request.FILES)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"ok": False, "errors": form.errors.get_json_data()}, status=400)
        if form.has_error("files", "required"):
            messages.error(request, "Choose at least one file to import.")
        else:  # what is wrong, field by field
            messages.error(request, " ".join(f"{name.replace('_', ' ')}: {e}" for name, es in form.errors.items() for e in es))
        return redirect("documents:list", slug=slug)
    uploads = form.cleaned_data["files"]
    fields = FieldMap(
        text=form.cleaned_data["text_field"], title=form.cleaned_data["title_field"], id=form.cleaned_data["id_field"]
    )
    if sum(f.size for f in uploads) > django_settings.DOCUMENTS_INLINE_MAX_BYTES:
        # Large: parsing and chunking megabytes would hold a web worker for as long; a CPU worker imports it.
        job = import_job_create(project=project, uploads=uploads, fields=fields, created_by=request.user)
        if wants_json:
            return JsonResponse(import_job_payload(job, project), status=202)
        if job.error:  # the broker did not take it: the files are kept, the sweep starts it once the broker answers
            messages.warning(request, f"Import {job.pk} of {len(uploads)} file(s): {job.error}")
        else:
            messages.success(
                request, f"Import {job.pk} of {len(uploads)} file(s) started; its report appears below when it is done."
            )
        return redirect("documents:list", slug=slug)
    report = documents_import(project=project, files=((f.name, f.read()) for f in uploads), fields=fields)
    if wants_json:
        return JsonResponse(report.as_dict(), status=200 if report.ok else 400)
    for f in report.files:
        if f.status == "failed":
            messages.error(
                request, f"{f.name}{' (' + f.locator + ')' if f.locator else ''}: {f.error}. Nothing from this file was imported."
            )
        else:
            messages.success(
                request,
                f.summary(),
            )
    return redirect("documents:list", slug=slug)


def import_job_payload(job: ImportJob, project, *, status_view: str = "documents:import_status") -> dict:
    """An import job as the page's progress and the API both report it; `status_url` is where to poll it."""
    return {
        "job": job.pk,
        "status": job.status,
        "files_done": job.files_done,
        "files_total": job.files_total,
        "report": job.report or None,
        "error": job.error,
        "status_url": reverse(status_view, args=[project.slug, job.pk]),
    }


@login_required
def import_status(request, slug: str, pk: int):
    project = get_project_for_admin(request, slug)
    return JsonResponse(import_job_payload(get_object_or_404(ImportJob, project=project, pk=pk), project))


@login_required
def document_preview(request, slug: str, pk: int):
    membership = get_membership(request, slug)
    project = membership.project
    document = get_object_or_404(SourceDocument, project=project, pk=pk)
    form = ChunkPreviewForm(request.GET or None)
    error = ""
    try:
        settings = chunk_settings_for(project)
    except ChunkSettingsError as exc:
        settings, error = ChunkSettings(), f"{exc} The preview below measures characters."
    if form.is_valid():
        overrides = {k: v for k, v in form.cleaned_data.items() if v is not None}
        try:
            settings = replace(settings, **overrides)
        except ValueError as exc:
            error = str(exc)
    elif form.is_bound:  # the project's own settings are shown, and why the sizes asked for were not tried
        error = " ".join(f"{form[name].label}: {' '.join(errors)}" for name, errors in form.errors.items())
    spans = chunk_text(document.text, settings)
    chunks = [
        {"index": i, "start": s.start, "end": s.end, "size": s.size, "text": document.text[s.start : s.end]}
        for i, s in enumerate(spans)
    ]
    # The figures cover every chunk; the texts are shown a page at a time (a long document made a page of megabytes).
    page = Paginator(chunks, PREVIEW_CHUNKS_PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(
        request,
        "documents/document_preview.html",
        {
            "project": project,
            "membership": membership,
            "document": document,
            "settings": settings,
            "page": page,
            "query": query,
            "form": form
            if request.GET
            else ChunkPreviewForm(initial={"target": settings.target, "maximum": settings.maximum, "overlap": settings.overlap}),
            "error": error,
            "chunks": chunks,
            "histogram": size_histogram([c["size"] for c in chunks]),
        },
    )


@login_required
@require_POST
def rechunk(request, slug: str):
    project = get_project_for_admin(request, slug)
    try:
        result = project_rechunk(project=project)
    except ChunkSettingsError as exc:  # checked before any chunk is retired: nothing changed
        messages.error(request, f"{exc} Nothing was re-chunked.")
        return redirect("documents:list", slug=project.slug)
    messages.success(
        request,
        f"Re-chunked with the current settings: {result['created']} new chunks, {result['retired']} retired "
        "(pairs keep the chunks they came from).",
    )
    return redirect("documents:list", slug=slug)


@login_required
def document_delete(request, slug: str, pk: int):
    """Delete one document and what was made from it, after a page that says what goes with it."""
    project = get_project_for_admin(request, slug)
    document = get_object_or_404(SourceDocument, project=project, pk=pk)
    if request.method == "POST":
        try:
            counts = documents_delete(project=project, document_ids=[document.pk])
        except DeletionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"Deleted “{document.title or document.origin_filename or '(untitled)'}”: {counts['chunks']} chunks and "
                f"{counts['pairs']} pairs with their reviews.",
            )
        return redirect("documents:list", slug=project.slug)
    counts = deletion_counts(documents=SourceDocument.objects.filter(pk=document.pk))
    return render(
        request,
        "documents/document_delete.html",
        {
            "project": project,
            "document": document,
            "counts": counts,
            "too_large": too_large_message(project=project, counts=counts),
        },
    )
