"""Writes to projects and memberships."""
from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from workbench.projects.models import Membership, Project, Role
from workbench.projects.presets import PRESETS, preset_defaults


class ProjectAlreadyExists(Exception):
    pass


@transaction.atomic
def project_create(
    *,
    slug: str,
    name: str,
    adapter_preset: str = "simple-qa",
    description: str = "",
    created_by: AbstractBaseUser | None = None,
    admins: Iterable[AbstractBaseUser] = (),
    reviewers: Iterable[AbstractBaseUser] = (),
    **overrides,
) -> Project:
    """Create a project from an adapter preset, with its members. Fails without writing anything on a bad value."""
    if adapter_preset not in PRESETS:
        raise ValidationError({"adapter_preset": f"Unknown adapter preset {adapter_preset!r}; choose one of {', '.join(PRESETS)}."})
    if Project.objects.filter(slug=slug).exists():
        raise ProjectAlreadyExists(f"A project with slug {slug!r} already exists.")
    fields = preset_defaults(adapter_preset) | overrides
    project = Project(slug=slug, name=name, description=description, created_by=created_by, **fields)
    project.full_clean()
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:
        raise ProjectAlreadyExists(f"A project with slug {slug!r} already exists.") from None
    memberships_set(project=project, admins=admins, reviewers=reviewers)
    return project


@transaction.atomic
def memberships_set(
    *, project: Project, admins: Iterable[AbstractBaseUser] = (), reviewers: Iterable[AbstractBaseUser] = ()
) -> None:
    """Add or update members with their roles; a user named as both admin and reviewer is an error."""
    admins, reviewers = list(admins), list(reviewers)
    both = {u.pk for u in admins} & {u.pk for u in reviewers}
    if both:
        names = sorted(u.get_username() for u in admins if u.pk in both)
        raise ValidationError(f"A member has one role; named as both admin and reviewer: {', '.join(names)}.")
    for role, users in ((Role.ADMIN, admins), (Role.REVIEWER, reviewers)):
        for user in users:
            Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
