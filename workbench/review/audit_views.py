"""Pages of the second-pass audit: agreement figures, starting an audit (admins), and the auditor's queue."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workbench.projects.access import get_membership, require_admin
from workbench.review.audit import audit_agreement, audit_claim, audit_create, audit_verdict
from workbench.review.forms import AuditStartForm, AuditVerdictForm, add_errors
from workbench.review.models import AuditItem
from workbench.review.selectors import pair_for_review
from workbench.review.services import ReviewConflict


@login_required
def overview(request, slug: str):
    membership = get_membership(request, slug)
    project = membership.project
    form = AuditStartForm(project=project) if membership.is_admin else None
    return render(
        request,
        "review/audit.html",
        {"project": project, "membership": membership, "form": form, "figures": audit_agreement(project=project)},
    )


@login_required
@require_POST
def start(request, slug: str):
    membership = require_admin(get_membership(request, slug), "Only project admins can start an audit.")
    project = membership.project
    form = AuditStartForm(request.POST, project=project)
    if form.is_valid():
        try:
            audit = audit_create(
                project=project,
                admin=request.user,
                sample_size=form.cleaned_data["sample_size"],
                reviewer=form.cleaned_data["reviewer"],
            )
            messages.success(request, f"Audit {audit.pk} started with {audit.sample_size} approved pairs.")
            return redirect("review:audit", slug)
        except ValidationError as exc:
            add_errors(form, exc)
    return render(
        request,
        "review/audit.html",
        {"project": project, "membership": membership, "form": form, "figures": audit_agreement(project=project)},
        status=400,
    )


def _item_page(request, membership, item, *, form=None, conflict=None, status=200):
    context = {"project": membership.project, "membership": membership, "item": item, "form": form, "conflict": conflict}
    if item is not None:
        context["pair"] = pair_for_review(pair_id=item.pair_id)
        context["changed"] = context["pair"].version != item.pair_version
    return render(request, "review/audit_item.html", context, status=status)


@login_required
def audit_queue(request, slug: str):
    membership = get_membership(request, slug)
    item = audit_claim(project=membership.project, auditor=request.user)
    if item is not None:
        item = AuditItem.objects.select_related("reviewer", "decision").get(pk=item.pk)
    return _item_page(request, membership, item)


@login_required
@require_POST
def verdict(request, slug: str, item_id: int):
    membership = get_membership(request, slug)
    item = get_object_or_404(
        AuditItem.objects.select_related("reviewer", "decision"), audit__project=membership.project, pk=item_id
    )
    form = AuditVerdictForm(request.POST)
    if not form.is_valid():
        return _item_page(request, membership, item, form=form, status=400)
    try:
        audit_verdict(
            item_id=item.pk,
            auditor=request.user,
            verdict=form.cleaned_data["verdict"],
            note=form.cleaned_data["note"],
            reject_pair=form.cleaned_data["reject_pair"],
        )
    except ReviewConflict as exc:
        return _item_page(request, membership, item, form=form, conflict=str(exc), status=409)
    except ValidationError as exc:
        add_errors(form, exc)
        return _item_page(request, membership, item, form=form, status=400)
    return redirect("review:audit_queue", slug)
