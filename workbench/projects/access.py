"""Who may see and do what in a project, for every view and API endpoint. One rule:

- someone who is not a member (or not logged in) gets 404 for every URL of the project and everything in it: to them
  the project does not exist, and a 403 would tell them it does;
- a member whose role lacks the right (a reviewer on an admin-only page or action) gets 403: they know the project,
  and the answer says it is their role that stops them.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from workbench.projects.models import Membership, Project, Role


def get_membership(request, slug: str) -> Membership:
    if not request.user.is_authenticated:
        raise Http404
    membership = Membership.objects.select_related("project").filter(project__slug=slug, user=request.user).first()
    if membership is None:
        raise Http404
    return membership


def get_project_for_member(request, slug: str) -> Project:
    return get_membership(request, slug).project


def require_admin(membership: Membership, message: str = "Only project admins can do this.") -> Membership:
    """403 for a member who is not the project's admin."""
    if not membership.is_admin:
        raise PermissionDenied(message)
    return membership


def get_project_for_admin(request, slug: str) -> Project:
    """Admin-only pages and actions: outsiders get 404, reviewers of the project 403."""
    return require_admin(get_membership(request, slug)).project


def projects_administered_by(user):
    """The projects a user may import into and start runs in: all for a superuser, else those they administer.

    The Django admin's own views use this too: being staff is not enough, the app's rule (project admin membership)
    applies everywhere.
    """
    if not user.is_authenticated or not user.is_active:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role=Role.ADMIN).distinct()


def require_some_project_admin(request):
    """403 for a staff user who administers no project (an admin page that acts on projects)."""
    projects = projects_administered_by(request.user)
    if not projects.exists():
        raise PermissionDenied("Only project admins can do this.")
    return projects
