"""Generation pages: start, watch (live progress), cancel and retry runs."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workbench.generation.models import GenerationRun, RunStatus
from workbench.generation.selectors import run_preflight_notice, run_progress, run_sampling_used, runs_for_project
from workbench.generation.services import generation_run_cancel, generation_run_retry, generation_run_start
from workbench.projects.access import get_membership, get_project_for_admin


@login_required
def run_list(request, slug: str):
    membership = get_membership(request, slug)
    runs = runs_for_project(project=membership.project)[:50]
    context = {"project": membership.project, "membership": membership, "runs": runs, "request_key": uuid.uuid4().hex}
    return render(request, "generation/run_list.html", context)


@login_required
@require_POST
def run_start(request, slug: str):
    project = get_project_for_admin(request, slug)
    try:
        # The form's own key: the same form sent twice (a double click, a resent page) starts one run.
        run, created = generation_run_start(
            project=project, created_by=request.user, request_key=request.POST.get("request_key", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("generation:list", slug=slug)
    if not created:
        messages.info(request, f"Run {run.pk} was already started from this form; no other run was started.")
    elif run.status == RunStatus.DISPATCH_FAILED:
        messages.error(request, f"Run {run.pk} was created but not started. {run.error}")
    else:
        messages.success(request, f"Run {run.pk} started: {run.samples_expected} samples from {run.chunk_count} chunks.")
    return redirect("generation:detail", slug=slug, pk=run.pk)


@login_required
def run_detail(request, slug: str, pk: int):
    membership = get_membership(request, slug)
    run = get_object_or_404(GenerationRun, project=membership.project, pk=pk)
    return render(
        request,
        "generation/run_detail.html",
        {
            "project": membership.project,
            "membership": membership,
            "run": run,
            "progress": run_progress(run=run),
            "sampling_used": run_sampling_used(run=run),
            "notice": run_preflight_notice(run=run),
        },
    )


@login_required
def run_progress_json(request, slug: str, pk: int):
    membership = get_membership(request, slug)
    run = get_object_or_404(GenerationRun, project=membership.project, pk=pk)
    return JsonResponse(run_progress(run=run))


def _run_action(request, slug: str, pk: int, service, done: str):
    project = get_project_for_admin(request, slug)
    run = get_object_or_404(GenerationRun, project=project, pk=pk)
    try:
        run = service(run=run)
        if run.status == RunStatus.DISPATCH_FAILED:
            messages.error(request, run.error)
        else:
            messages.success(request, done.format(run=run))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("generation:detail", slug=slug, pk=pk)


@login_required
@require_POST
def run_cancel(request, slug: str, pk: int):
    return _run_action(
        request,
        slug,
        pk,
        generation_run_cancel,
        "Run {run.pk} cancelled; its workers stop at their next store, and what they stored stays for review.",
    )


@login_required
@require_POST
def run_retry(request, slug: str, pk: int):
    return _run_action(
        request, slug, pk, generation_run_retry, "Run {run.pk}: its batches are queued again; only missing samples are generated."
    )
