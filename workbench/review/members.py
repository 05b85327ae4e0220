"""The project's Members page: every member sees who is in the project and their review counts; project admins add
members by username or e-mail (inviting new ones by e-mail), change roles and remove members."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q
from django.shortcuts import redirect, render
from django.utils import timezone

from workbench.auth import PasswordResetForm
from workbench.generation.models import PairStatus, QAPair
from workbench.projects.access import get_membership, require_admin
from workbench.projects.models import Role
from workbench.projects.services import membership_add, membership_remove, membership_set_role
from workbench.review.models import Decision, ReviewDecision
from workbench.review.selectors import decisions_standing


class AddMemberForm(forms.Form):
    identifier = forms.CharField(label="Username or e-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)


def _invite(request):
    """Mail a new account a link that sets its password (Django's password reset, the console backend by default)."""

    def send(user) -> None:
        form = PasswordResetForm({"email": user.email})
        if form.is_valid():
            form.save(
                request=request,
                use_https=request.is_secure(),
                subject_template_name="registration/invite_subject.txt",
                email_template_name="registration/invite_email.txt",
                extra_email_context={
                    "inviter": request.user.get_username(),
                    "timeout_days": settings.PASSWORD_RESET_TIMEOUT // 86400,
                },
                from_email=settings.DEFAULT_FROM_EMAIL,
            )

    return send


def _member_rows(project):
    # Decisions that stand (undone ones left out); bulk rejections are counted and shown apart.
    decisions = (
        decisions_standing(ReviewDecision.objects.filter(pair__project=project))
        .values("reviewer")
        .annotate(
            total=Count("id"),
            approved=Count("id", filter=Q(decision=Decision.APPROVE)),
            edited=Count("id", filter=Q(decision=Decision.EDIT)),
            rejected=Count("id", filter=Q(decision=Decision.REJECT)),
            bulk=Count("id", filter=Q(is_bulk=True)),
            last=Max("created_at"),
        )
    )
    by_user = {row["reviewer"]: row for row in decisions}
    # Live leases only: a lapsed one holds nothing (the pair goes to the next reviewer who asks).
    held = dict(
        QAPair.objects.filter(
            project=project, status=PairStatus.PENDING, claimed_by__isnull=False, lease_expires_at__gte=timezone.now()
        )
        .values_list("claimed_by")
        .annotate(n=Count("id"))
    )
    rows = []
    for m in project.memberships.select_related("user").order_by("role", "user__username"):
        counts = by_user.get(m.user_id, {})
        rows.append({"membership": m, "counts": counts, "held": held.get(m.user_id, 0)})
    return rows


@login_required
def members(request, slug: str):
    membership = get_membership(request, slug)
    project = membership.project
    form = AddMemberForm()
    if request.method == "POST":
        require_admin(membership, "Only project admins can change members.")
        action = request.POST.get("action")
        try:
            if action == "add":
                form = AddMemberForm(request.POST)
                if form.is_valid():
                    added, invited = membership_add(
                        project=project,
                        identifier=form.cleaned_data["identifier"],
                        role=form.cleaned_data["role"],
                        invite=_invite(request),
                    )
                    note = " An invitation to set a password was e-mailed to them." if invited else ""
                    messages.success(request, f"{added.user.get_username()} added as {added.get_role_display().lower()}.{note}")
                    return redirect("review:members", slug)
            elif action in ("role", "remove"):
                try:
                    member_id = int(request.POST.get("member", ""))
                except ValueError:
                    raise ValidationError("Choose a member.") from None
                if action == "role":
                    changed = membership_set_role(project=project, membership_id=member_id, role=request.POST.get("role", ""))
                    messages.success(request, f"{changed.user.get_username()} is now {changed.get_role_display().lower()}.")
                else:
                    removed = membership_remove(project=project, membership_id=member_id)
                    # Pairs they held go back to the queue now rather than when their leases run out.
                    QAPair.objects.filter(project=project, claimed_by=removed.user_id).update(
                        claimed_by=None, lease_expires_at=None
                    )
                    if removed.user_id == request.user.pk:
                        messages.success(request, f"You left {project.name}; your decisions stay in its history.")
                        return redirect("projects:list")
                    messages.success(request, f"{removed.user.get_username()} removed; their decisions stay in the history.")
                return redirect("review:members", slug)
            else:
                raise ValidationError("Unknown action.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            status = 400
        else:
            status = 400 if form.errors else 200
    else:
        status = 200
    return render(
        request,
        "review/members.html",
        {"project": project, "membership": membership, "rows": _member_rows(project), "form": form, "roles": Role.choices},
        status=status,
    )
