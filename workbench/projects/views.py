"""Project pages for members."""

from __future__ import annotations

import logging
import time

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from workbench.projects.access import get_membership
from workbench.projects.selectors import projects_for_user

log = logging.getLogger(__name__)

# A probe asks often and gives up after a few seconds: a broker that does not connect within this is down for it.
BROKER_CHECK_EVERY_SECONDS = 10
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


_broker_seen: tuple[float, str] = (0.0, "")  # (monotonic time, state) of the last broker check


def _broker_state() -> str:
    """The broker's state, checked at most every BROKER_CHECK_EVERY_SECONDS per web process (a probe every second must
    not open a broker connection, and wait its timeout, every second while the broker is away)."""
    global _broker_seen
    seen_at, state = _broker_seen
    if state and time.monotonic() - seen_at < BROKER_CHECK_EVERY_SECONDS:
        return state
    state = _broker_check()
    _broker_seen = (time.monotonic(), state)
    return state


def _broker_check() -> str:
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
    """Readiness: 503 when the database does not answer (no page can be served); 200 otherwise, with the task broker's
    state: without the broker the web tier still serves review, and queues runs, imports and exports for the dispatch
    sweep, so a load balancer must not take every web node out for it ("degraded"). Unauthenticated, so it says only
    "ok" or "down" per component (the log has the reason)."""
    components = {"database": _database_state(), "broker": _broker_state()}
    if components["database"] != "ok":
        return JsonResponse({"status": "down", **components}, status=503)
    return JsonResponse({"status": "ok" if components["broker"] == "ok" else "degraded", **components})
