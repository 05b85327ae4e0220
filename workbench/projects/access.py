"""Access helpers for views: objects outside the user's projects do not exist for them (404, never 403)."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from workbench.projects.models import Membership, Project


def get_membership(request, slug: str) -> Membership:
    if not request.user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("project").filter(project__slug=slug, user=request.user).first()
    )
    if membership is None:
        raise Http404
    return membership


def get_project_for_member(request, slug: str) -> Project:
    return get_membership(request, slug).project


def get_project_for_admin(request, slug: str) -> Project:
    """Admin-only actions: outsiders get 404, reviewers of the project 403."""
    membership = get_membership(request, slug)
    if not membership.is_admin:
        raise PermissionDenied("Only project admins can do this.")
    return membership.project
