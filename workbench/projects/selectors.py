"""Reads of projects, always scoped to what the user may see."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from workbench.projects.models import Membership, Project


def projects_for_user(*, user) -> QuerySet[Project]:
    """Only the projects the user is a member of, with their member count."""
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user).annotate(member_count=Count("memberships", distinct=True))


def membership_for(*, user, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, project=project).first()
