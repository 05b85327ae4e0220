"""Project pages for members."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workbench.projects.access import get_membership
from workbench.projects.selectors import projects_for_user


@login_required
def project_list(request):
    return render(request, "projects/project_list.html", {"projects": projects_for_user(user=request.user)})


@login_required
def project_detail(request, slug: str):
    membership = get_membership(request, slug)
    project = membership.project
    members = project.memberships.select_related("user").order_by("role", "user__username")
    return render(
        request,
        "projects/project_detail.html",
        {
            "project": project,
            "membership": membership,
            "members": members,
            "document_count": project.documents.count(),
        },
    )


@require_GET
def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")
