"""Reads of projects, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from workbench.projects.models import Membership, Project


def projects_for_user(*, user) -> QuerySet[Project]:
    """Only the projects the user is a member of, with their member count."""
    if not user.is_authenticated:
        return Project.objects.none()
    # Counted in a subquery: counting the join that selects the user's projects would count only the user (always 1).
    counts = Membership.objects.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("pk")).values("n")
    return Project.objects.filter(memberships__user=user).annotate(member_count=Coalesce(Subquery(counts), 0))


def membership_for(*, user, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, project=project).first()
