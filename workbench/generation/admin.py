import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from workbench.documents.admin import ViewOnlyAdmin
from workbench.generation.models import Generation, GenerationRun, QAPair, RunStatus
from workbench.generation.services import generation_run_start
from workbench.projects.access import require_some_project_admin
from workbench.projects.admin_scope import ProjectScopedAdmin
from workbench.projects.models import Project


class StartRunForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    # The form's own key: the same form sent twice (a double click, a resent page) starts one run.
    request_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = projects


@admin.register(GenerationRun)
class GenerationRunAdmin(ProjectScopedAdmin):
    list_display = ["id", "project", "status", "samples_done", "samples_expected", "created_at"]
    list_filter = ["status", "project"]
    readonly_fields = [f.name for f in GenerationRun._meta.fields]
    change_list_template = "admin/generation/generationrun/change_list.html"

    def has_add_permission(self, request):
        return False  # runs start through the service (parameters frozen, batches enqueued): see "Start a run"

    def get_urls(self):
        return [path("start/", self.admin_site.admin_view(self.start_view), name="generation_start_run")] + super().get_urls()

    def start_view(self, request):
        projects = require_some_project_admin(request)  # staff alone may not start runs in any project
        form = StartRunForm(request.POST or None, projects=projects, initial={"request_key": uuid.uuid4().hex})
        if request.method == "POST" and form.is_valid():
            try:
                run, created = generation_run_start(
                    project=form.cleaned_data["project"],
                    created_by=request.user,
                    request_key=form.cleaned_data["request_key"],
                )
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                if not created:
                    self.message_user(request, f"Run {run.pk} was already started from this form; no other run was started.")
                    return redirect("admin:generation_generationrun_changelist")
                if run.status == RunStatus.DISPATCH_FAILED:
                    self.message_user(request, f"Run {run.pk} was created but not started. {run.error}", messages.ERROR)
                    return redirect("generation:detail", slug=run.project.slug, pk=run.pk)
                self.message_user(request, f"Run {run.pk} started: {run.samples_expected} samples from {run.chunk_count} chunks.")
                return redirect("admin:generation_generationrun_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Start a generation run",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/generation/start_run.html", context)


@admin.register(Generation)
class GenerationAdmin(ViewOnlyAdmin):
    project_lookup = "run__project"
    list_display = ["id", "run", "chunk", "sample_index", "finish_reason", "completion_tokens"]
    list_filter = ["finish_reason"]
    readonly_fields = [f.name for f in Generation._meta.fields]


@admin.register(QAPair)
class QAPairAdmin(ViewOnlyAdmin):
    list_display = ["id", "project", "status", "flags", "version"]
    list_filter = ["status", "project"]
    readonly_fields = ["version", "original_question", "original_answer", "generation", "chunk", "flags"]
