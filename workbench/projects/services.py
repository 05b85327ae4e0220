"""Writes to projects and memberships."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from workbench.projects.models import Membership, Project, Role
from workbench.projects.presets import PRESETS, preset_defaults


class ProjectAlreadyExists(Exception):
    pass


def slug_for(name: str, *, max_length: int = 64) -> str:
    """A free ASCII slug made from a project name in any script: Hangul is romanised (anyascii), so "법률 QA" gives
    "beoblyul-qa" and a Hangul-only name never gives an empty slug; a taken slug gets "-2", "-3", ..."""
    from anyascii import anyascii
    from django.utils.text import slugify

    base = slugify(anyascii(name or ""))[: max_length - 4].strip("-_") or "project"
    slug, n = base, 1
    while Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


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
        raise ValidationError(
            {"adapter_preset": f"Unknown adapter preset {adapter_preset!r}; choose one of {', '.join(PRESETS)}."}
        )
    if Project.objects.filter(slug=slug).exists():
        raise ProjectAlreadyExists(f"A project with slug {slug!r} already exists.")
    fields = preset_defaults(adapter_preset) | overrides
    project = Project(slug=slug, name=name, description=description, created_by=created_by, **fields)
    project.full_clean()
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:
        if not Project.objects.filter(slug=slug).exists():
            raise  # another constraint: not a slug taken by a concurrent create
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


class MembershipError(ValidationError):
    pass


def project_lock(project_id: int) -> None:
    """Take the project's row lock until the transaction ends: what must not interleave within one project takes it
    (membership changes, so two admins demoting each other leave one; deleting documents against starting, retrying a
    run or re-chunking)."""
    Project.objects.select_for_update().filter(pk=project_id).first()


def _lock_memberships(project: Project) -> None:
    project_lock(project.pk)


def _check_an_admin_remains(project: Project) -> None:
    if not Membership.objects.filter(project=project, role=Role.ADMIN).exists():
        raise MembershipError("A project needs at least one admin: make someone else admin first.")


def user_find(identifier: str):
    """The account whose username (exactly, then ignoring case) or e-mail (ignoring case) is `identifier`."""
    User = get_user_model()
    identifier = identifier.strip()
    if not identifier:
        return None
    for lookup in ({"username": identifier}, {"username__iexact": identifier}):
        user = User.objects.filter(**lookup, is_active=True).first()
        if user is not None:
            return user
    matches = list(User.objects.filter(email__iexact=identifier, is_active=True)[:2])
    if len(matches) > 1:
        raise MembershipError(f"Several accounts use the e-mail {identifier}; add the member by username.")
    return matches[0] if matches else None


@transaction.atomic
def membership_add(*, project: Project, identifier: str, role: str, invite=None) -> tuple[Membership, bool]:
    """Add an existing account by username or e-mail, or invite a new one by e-mail.

    An e-mail that matches no account creates one (username = the e-mail, no usable password) and `invite(user)` is
    called after the transaction commits, to send it a link that sets its password. Returns (membership, invited).
    """
    if role not in Role.values:
        raise MembershipError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    _lock_memberships(project)
    user = user_find(identifier)
    invited = False
    if user is None:
        identifier = identifier.strip()
        try:
            validate_email(identifier)
        except ValidationError:
            raise MembershipError(
                f"No account has the username or e-mail {identifier!r}. Type an e-mail address to invite someone new."
            ) from None
        User = get_user_model()
        if len(identifier) > User._meta.get_field(User.USERNAME_FIELD).max_length:
            raise MembershipError("That e-mail is too long to be a username here; create the account in the admin.")
        if User.objects.filter(username=identifier).exists():  # an inactive account holds the name
            raise MembershipError(f"The account {identifier} is deactivated; an administrator can reactivate it.")
        user = User.objects.create_user(username=identifier, email=identifier)
        user.set_unusable_password()
        user.save(update_fields=["password"])
        invited = True
        if invite is not None:
            transaction.on_commit(lambda: invite(user))
    if Membership.objects.filter(project=project, user=user).exists():
        raise MembershipError(f"{user.get_username()} is already a member of this project.")
    return Membership.objects.create(project=project, user=user, role=role), invited


@transaction.atomic
def membership_set_role(*, project: Project, membership_id: int, role: str) -> Membership:
    if role not in Role.values:
        raise MembershipError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    _lock_memberships(project)
    membership = Membership.objects.filter(project=project, pk=membership_id).first()
    if membership is None:
        raise MembershipError("That member is no longer in this project.")
    membership.role = role
    membership.save(update_fields=["role"])
    _check_an_admin_remains(project)  # raises, and the atomic block rolls the change back
    return membership


@transaction.atomic
def membership_remove(*, project: Project, membership_id: int) -> Membership:
    """Remove a member. Their decisions stay in the project's history under their name."""
    _lock_memberships(project)
    membership = Membership.objects.select_related("user").filter(project=project, pk=membership_id).first()
    if membership is None:
        raise MembershipError("That member is no longer in this project.")
    membership.delete()
    _check_an_admin_remains(project)
    return membership
