"""Export pages for project admins (reviewers get 403, outsiders 404): start an export, follow it, download files."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workbench.exports.formats import FORMATS
from workbench.exports.models import Export
from workbench.exports.services import ExportOptions, export_create, export_record, export_run
from workbench.generation.models import QAPair
from workbench.projects.access import get_project_for_admin


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS])
    include_edited = forms.BooleanField(required=False, initial=True, label="Include edited-and-approved pairs")
    grounded = forms.BooleanField(required=False, label="Put the source chunk in the prompt")
    metadata = forms.BooleanField(required=False, label="Metadata columns")
    validation_percent = forms.IntegerField(min_value=0, max_value=50, initial=0, label="Validation split (% of documents)")


@login_required
def export_list(request, slug: str):
    project = get_project_for_admin(request, slug)
    return render(
        request,
        "exports/exports.html",
        {"project": project, "form": ExportForm(), "exports": project.exports.select_related("created_by")[:50]},
    )


@login_required
@require_POST
def export_start(request, slug: str):
    project = get_project_for_admin(request, slug)
    form = ExportForm(request.POST)
    if not form.is_valid():
        return render(
            request, "exports/exports.html", {"project": project, "form": form, "exports": project.exports.all()[:50]}, status=400
        )
    statuses = ("approved", "edited") if form.cleaned_data["include_edited"] else ("approved",)
    options = ExportOptions(
        statuses=statuses,
        grounded=form.cleaned_data["grounded"],
        metadata=form.cleaned_data["metadata"],
        validation_percent=form.cleaned_data["validation_percent"] or 0,
    )
    rows = QAPair.objects.filter(project=project, status__in=statuses).count()
    if rows <= settings.EXPORT_INLINE_MAX_ROWS:
        # Small: written in this request and sent straight back (still with its manifest, in the history).
        export = export_run(
            export_id=export_record(project=project, fmt=form.cleaned_data["format"], options=options, created_by=request.user).pk
        )
        if not export.manifest["counts"]["total"]:
            # An empty file downloaded without a word looked like a broken export.
            wanted = " or ".join(export.manifest.get("options", {}).get("statuses", statuses))
            messages.warning(
                request,
                f"Export {export.pk} has no rows: no pair of this project is {wanted} in a way this format takes. "
                "Review pairs first; the empty files are listed below.",
            )
            return redirect("exports:list", slug=slug)
        if export.manifest.get("warnings"):
            # Something the admin asked for is missing (an empty validation split): say so, files listed below.
            for warning in export.manifest["warnings"]:
                messages.warning(request, f"Export {export.pk}: {warning}")
            return redirect("exports:list", slug=slug)
        files = export.manifest["files"]
        if len(files) > 1:
            # Train and validation files: both listed with their links (one download could carry only one of them).
            listed = ", ".join(f"{f['file']} ({f['rows']:,} rows)" for f in files)
            messages.success(request, f"Export {export.pk} is ready: {listed}. Download each below.")
            return redirect("exports:list", slug=slug)
        name = files[0]["file"]
        path = Path(settings.MEDIA_ROOT) / "exports" / str(export.pk) / name
        return FileResponse(open(path, "rb"), as_attachment=True, filename=f"{project.slug}-{export.pk}-{name}")
    export = export_create(project=project, fmt=form.cleaned_data["format"], options=options, created_by=request.user)
    if export.error:  # the broker did not take it: recorded, started by the sweep once the broker answers
        messages.warning(request, f"Export {export.pk} of {rows:,} pairs: {export.error}")
    else:
        messages.success(request, f"Export {export.pk} of {rows:,} pairs started; its files appear here when it is done.")
    return redirect("exports:list", slug=slug)


@login_required
def export_status(request, slug: str, pk: int):
    project = get_project_for_admin(request, slug)
    export = get_object_or_404(Export, project=project, pk=pk)
    return JsonResponse(
        {
            "id": export.pk,
            "status": export.status,
            "rows_done": export.rows_done,
            "rows_total": export.rows_total,
            "error": export.error,
            "manifest": export.manifest,
        }
    )


@login_required
def export_download(request, slug: str, pk: int, name: str):
    project = get_project_for_admin(request, slug)
    export = get_object_or_404(Export, project=project, pk=pk)
    allowed = {f["file"] for f in export.manifest.get("files", [])} | {"manifest.json"}
    if name not in allowed:
        raise Http404
    path = Path(settings.MEDIA_ROOT) / "exports" / str(export.pk) / name
    if not path.is_file():
        raise Http404
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"{project.slug}-{export.pk}-{name}")
