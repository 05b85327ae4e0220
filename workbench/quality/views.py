"""The project's quality page: flag rates, filter calibration against reviewers, thresholds, re-scoring."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workbench.generation.models import QAPair
from workbench.projects.access import get_membership, get_project_for_admin
from workbench.quality.selectors import effective_thresholds, flag_calibration, latest_scoring_job
from workbench.quality.services import scoring_job_create


def _job_json(job):
    if job is None:
        return None
    return {"id": job.pk, "status": job.status, "done": job.done, "total": job.total, "error": job.error}


@login_required
def quality_page(request, slug: str):
    membership = get_membership(request, slug)
    project = membership.project
    return render(
        request,
        "quality/quality.html",
        {
            "project": project,
            "membership": membership,
            "pair_count": QAPair.objects.filter(project=project).count(),
            "calibration": flag_calibration(project=project),
            "config": effective_thresholds(project=project),
            "job": latest_scoring_job(project=project),
        },
    )


@login_required
def scoring_job_json(request, slug: str):
    membership = get_membership(request, slug)
    return JsonResponse({"job": _job_json(latest_scoring_job(project=membership.project))})


@login_required
@require_POST
def rescore(request, slug: str):
    project = get_project_for_admin(request, slug)
    job = scoring_job_create(project=project, created_by=request.user)
    if job.error:  # the broker did not take it: recorded, started by the sweep once the broker answers
        messages.warning(request, f"Re-scoring {job.total} pairs: {job.error}")
    else:
        messages.success(request, f"Re-scoring {job.total} pairs with the current thresholds.")
    return redirect("quality:page", slug=slug)
