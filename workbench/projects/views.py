"""Project pages for members."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workbench.projects.access import get_membership
from workbench.projects.selectors import projects_for_user

log = logging.getLogger(__name__)

# A probe asks often and gives up after a few seconds: a broker that does not connect within this is down for it.
BROKER_CHECK_TIMEOUT_SECONDS = 2


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


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # whatever keeps the query from answering, the database is down for the probe
        log.exception("healthz: the database did not answer")
        return "down"
    return "ok"


def _broker_state() -> str:
    from workbench.celery import app

    timeouts = {"socket_connect_timeout": BROKER_CHECK_TIMEOUT_SECONDS, "socket_timeout": BROKER_CHECK_TIMEOUT_SECONDS}
    try:
        # A fresh connection, not the pool's: one attempt, no retry, closed on leaving.
        with app.connection_for_write(connect_timeout=BROKER_CHECK_TIMEOUT_SECONDS, transport_options=timeouts) as broker:
            broker.ensure_connection(max_retries=0, timeout=BROKER_CHECK_TIMEOUT_SECONDS)
    except Exception:
        log.exception("healthz: the task broker did not answer")
        return "down"
    return "ok"


@require_GET
def healthz(request):
    """Readiness: 200 when the database and the task broker both answer, 503 naming what is down. Unauthenticated,
    so it says only "ok" or "down" per component (the log has the reason)."""
    components = {"database": _database_state(), "broker": _broker_state()}
    down = [name for name, state in components.items() if state != "ok"]
    return JsonResponse({"status": "down" if down else "ok", **components}, status=503 if down else 200)
