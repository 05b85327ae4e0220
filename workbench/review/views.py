"""The reviewer's page (queue, decisions, undo), the admins' pair browser with bulk actions, and the dashboard."""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from workbench.generation.models import QAPair
from workbench.projects.access import get_membership, get_project_for_admin
from workbench.quality.filters import FLAG_NAMES
from workbench.review.forms import BulkRejectForm, DecisionForm, PairFilterForm, add_errors
from workbench.review.selectors import highlighted_segments, history_for_pair, pair_for_review, pairs_filtered
from workbench.review.services import PRESET_REASONS, ReviewConflict, ReviewInput, pair_claim, pair_review, pairs_bulk_reject, review_undo

CONTEXT_CHARS = 1500


def _queue_url(slug: str, flag: str | None) -> str:
    url = reverse("review:queue", args=[slug])
    return f"{url}?{urlencode({'flag': flag})}" if flag else url


def _pair_context(pair: QAPair) -> dict:
    flags = list(pair.flag_details.all())
    spans = [s for f in flags if f.name == "echo" for s in f.details.get("spans", [])]
    document = pair.chunk.document.text
    before = document[max(0, pair.chunk.start - CONTEXT_CHARS) : pair.chunk.start]
    after = document[pair.chunk.end : pair.chunk.end + CONTEXT_CHARS]
    return {
        "pair": pair,
        "flags": sorted(flags, key=lambda f: (f.severity != "reject", f.name)),
        "source_segments": highlighted_segments(pair.chunk.text, spans),
        "question_segments": highlighted_segments(pair.question, spans, field="question"),
        "answer_segments": highlighted_segments(pair.answer, spans, field="answer"),
        # Facts of the answer that the source lacks (unsupported), marked in the answer shown under its flag.
        "unsupported_segments": highlighted_segments(
            pair.answer, [dict(m, field="answer") for f in flags if f.name == "unsupported" for m in f.details.get("missing", [])],
            field="answer"),
        "context_before": before,
        "context_after": after,
        "generation": pair.generation,
        "run": pair.generation.run if pair.generation_id else None,
        "history": history_for_pair(pair=pair)[:20],
    }


def _render(request, membership, pair, *, flag, form=None, conflict=None, status=200):
    context = {
        "project": membership.project,
        "membership": membership,
        "flag": flag,
        "flag_names": FLAG_NAMES,
        "reasons": PRESET_REASONS,
        "form": form,
        "conflict": conflict,
        **(_pair_context(pair) if pair else {"pair": None}),
    }
    return render(request, "review/queue.html", context, status=status)


@login_required
def queue(request, slug: str):
    membership = get_membership(request, slug)
    flag = request.GET.get("flag") if request.GET.get("flag") in FLAG_NAMES else None
    pair = pair_claim(project=membership.project, reviewer=request.user, flag=flag)
    if pair is not None:
        pair = pair_for_review(pair_id=pair.pk)
    return _render(request, membership, pair, flag=flag)


@login_required
def next_pair(request, slug: str):
    """The pair after `after`, leased now and rendered as a fragment, so the page has it before the decision is sent."""
    membership = get_membership(request, slug)
    flag = request.GET.get("flag") if request.GET.get("flag") in FLAG_NAMES else None
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    pair = pair_claim(project=membership.project, reviewer=request.user, flag=flag, exclude=(after,))
    if pair is None:
        return HttpResponse(status=204)
    context = {"project": membership.project, "membership": membership, "flag": flag, "reasons": PRESET_REASONS, "form": None,
               **_pair_context(pair_for_review(pair_id=pair.pk))}
    return render(request, "review/_pair.html", context)


@login_required
@require_POST
def decide(request, slug: str, pk: int):
    membership = get_membership(request, slug)
    pair = get_object_or_404(QAPair, project=membership.project, pk=pk)
    flag = request.POST.get("flag") if request.POST.get("flag") in FLAG_NAMES else None
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _render(request, membership, pair_for_review(pair_id=pair.pk), flag=flag, form=form, status=400)
    data = ReviewInput(
        decision=form.cleaned_data["decision"], version=form.cleaned_data["version"],
        question=form.cleaned_data["question"], answer=form.cleaned_data["answer"], reason=form.full_reason(),
    )
    try:
        pair_review(pair_id=pair.pk, reviewer=request.user, data=data)
    except ReviewConflict as exc:
        return _render(request, membership, pair_for_review(pair_id=pair.pk), flag=flag, form=form, conflict=str(exc), status=409)
    except ValidationError as exc:
        add_errors(form, exc)
        return _render(request, membership, pair_for_review(pair_id=pair.pk), flag=flag, form=form, status=400)
    return redirect(_queue_url(slug, flag))


@login_required
@require_POST
def undo(request, slug: str):
    membership = get_membership(request, slug)
    try:
        pair = review_undo(project=membership.project, reviewer=request.user)
        messages.success(request, f"Undone: pair {pair.pk} is back with you.")
    except (ValidationError, ReviewConflict) as exc:
        messages.error(request, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
    return redirect(_queue_url(slug, request.POST.get("flag") if request.POST.get("flag") in FLAG_NAMES else None))


@login_required
def pair_browser(request, slug: str):
    project = get_project_for_admin(request, slug)
    form = PairFilterForm(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    pairs = pairs_filtered(project=project, params=params)
    page = Paginator(pairs, 50).get_page(request.GET.get("page"))
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(request, "review/pairs.html", {"project": project, "form": form, "page": page, "query": urlencode(query),
                                                  "count": page.paginator.count, "bulk_form": BulkRejectForm()})


@login_required
@require_POST
def bulk_reject(request, slug: str):
    project = get_project_for_admin(request, slug)
    filters = PairFilterForm(request.POST)
    bulk = BulkRejectForm(request.POST)
    if not (filters.is_valid() and bulk.is_valid()):
        messages.error(request, "Give a reason for the bulk rejection.")
    else:
        done = pairs_bulk_reject(project=project, admin=request.user, pairs=pairs_filtered(project=project, params=filters.cleaned_data),
                                 reason=bulk.cleaned_data["reason"])
        messages.success(request, f"Rejected {done} pending pairs; each decision is in the pairs' history.")
    query = {k: v for k, v in request.POST.items() if k in PairFilterForm.base_fields and v}
    return redirect(f"{reverse('review:pairs', args=[slug])}?{urlencode(query)}")


@login_required
def dashboard(request, slug: str):
    from workbench.generation.models import GenerationRun
    from workbench.generation.selectors import run_progress
    from workbench.quality.selectors import flag_calibration
    from workbench.review.audit import audit_agreement
    from workbench.review.selectors import project_stats, reviewer_throughput

    membership = get_membership(request, slug)
    project = membership.project
    stats = project_stats(project=project)
    run = GenerationRun.objects.filter(project=project).first()
    return render(request, "review/dashboard.html", {
        "project": project, "membership": membership, "stats": stats,
        "statuses": [(label, stats["by_status"].get(value, 0)) for value, label in QAPair._meta.get_field("status").choices],
        "calibration": flag_calibration(project=project),
        "throughput": reviewer_throughput(project=project),
        "run": run, "progress": run_progress(run=run) if run else None,
        "audit": audit_agreement(project=project)["overall"],
    })
