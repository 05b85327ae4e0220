"""The reviewer's page (queue, decisions, undo), the admins' pair browser with bulk actions, and the dashboard."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.access import get_membership, get_project_for_admin
from workbench.quality.filters import FLAG_NAMES
from workbench.review.bulk import BulkSelectionChanged, bulk_action_undo, bulk_reject_selection, pairs_bulk_reject_confirmed
from workbench.review.forms import BulkConfirmForm, BulkRejectForm, DecisionForm, PairFilterForm, add_errors, query_id
from workbench.review.models import BulkAction
from workbench.review.selectors import highlighted_segments, history_for_pair, pair_for_review, pairs_filtered
from workbench.review.services import (
    PRESET_REASONS,
    AlreadyUndone,
    ReviewConflict,
    ReviewInput,
    admin_decision_stands,
    normalize_newlines,
    pair_admin_decide,
    pair_claim,
    pair_held,
    pair_lease,
    pair_review,
    review_undo,
)

CONTEXT_CHARS = 1500


def _queue_url(slug: str, flag: str | None, pair: int | None = None) -> str:
    url = reverse("review:queue", args=[slug])
    query = {k: v for k, v in (("flag", flag), ("pair", pair)) if v}
    return f"{url}?{urlencode(query)}" if query else url


def _pair_context(pair: QAPair) -> dict:
    flags = list(pair.flag_details.all())
    spans = [s for f in flags if f.name == "echo" for s in f.details.get("spans", [])]
    document = pair.chunk.document.text
    before = document[max(0, pair.chunk.start - CONTEXT_CHARS) : pair.chunk.start]
    after = document[pair.chunk.end : pair.chunk.end + CONTEXT_CHARS]
    # The flags were raised on the model's output: on a pair edited since, their marks (copied spans, missing facts)
    # point into the model's text, not the text shown now, which is left unmarked.
    original = (pair.original_question, pair.original_answer)
    edited = any(original) and (pair.question, pair.answer) != original  # no original kept: the text is the model's
    marked = [] if edited else spans
    return {
        "pair": pair,
        "flags_on_original": edited and bool(flags),
        "question_text": pair.question,
        "answer_text": pair.answer,
        "flags": sorted(flags, key=lambda f: (f.severity != "reject", f.name)),
        "reject_flags": sorted(f.name for f in flags if f.severity == "reject"),
        "source_segments": highlighted_segments(pair.chunk.text, spans),
        "question_segments": highlighted_segments(pair.question, marked, field="question"),
        "answer_segments": highlighted_segments(pair.answer, marked, field="answer"),
        # Facts of the model's answer that the source lacks (unsupported), marked in that answer under its flag.
        "unsupported_segments": highlighted_segments(
            pair.original_answer if edited else pair.answer,
            [dict(m, field="answer") for f in flags if f.name == "unsupported" for m in f.details.get("missing", [])],
            field="answer",
        ),
        "context_before": before,
        "context_after": after,
        "generation": pair.generation,
        "run": pair.generation.run if pair.generation_id else None,
        "history": history_for_pair(pair=pair)[:20],
    }


def _submitted_text(form) -> dict:
    """The question and answer the reviewer sent, as the service would store them."""
    data = form.cleaned_data if form.is_bound and hasattr(form, "cleaned_data") else {}
    return {
        "question": normalize_newlines(data.get("question") or form.data.get("question", "")),
        "answer": normalize_newlines(data.get("answer") or form.data.get("answer", "")),
    }


def _render(request, membership, pair, *, flag, form=None, conflict=None, status=200):
    """The review page; after a refused decision, with the reviewer's own text: in the fields for a field error, beside
    the pair as it is now for a conflict."""
    submitted = _submitted_text(form) if form is not None else None
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
    if pair and submitted:
        if conflict:
            context["yours"] = submitted
            context["may_reapply"] = pair.status == "pending" or not admin_decision_stands(pair, request.user)
        else:
            context["question_text"], context["answer_text"] = submitted["question"], submitted["answer"]
        context["ask_confirm"] = bool(form.errors.get("confirm"))
    return render(request, "review/queue.html", context, status=status)


@login_required
def queue(request, slug: str):
    membership = get_membership(request, slug)
    flag = request.GET.get("flag") if request.GET.get("flag") in FLAG_NAMES else None
    pair = None
    held_id = query_id(request.GET.get("pair"))
    if held_id is not None:  # the pair an undo gave back, while the reviewer still holds it
        pair = pair_held(project=membership.project, reviewer=request.user, pair_id=held_id)
    if pair is None:
        pair = pair_claim(project=membership.project, reviewer=request.user, flag=flag)
    if pair is not None:
        pair = pair_for_review(pair_id=pair.pk)
    return _render(request, membership, pair, flag=flag)


def login_required_or_401(view):
    """login_required, except that the review page's own requests (header X-Review-Fetch) from a session that has
    ended get a 401 instead of the login page: the page then says so and keeps the draft, instead of taking the login
    page's redirect for a decision recorded."""
    guarded = login_required(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated and request.headers.get("X-Review-Fetch"):
            return HttpResponse("Your session has ended: log in again.", status=401, content_type="text/plain")
        return guarded(request, *args, **kwargs)

    return wrapper


@login_required_or_401
def next_pair(request, slug: str):
    """The pair after `after`, leased now and rendered as a fragment, so the page has it before the decision is sent."""
    membership = get_membership(request, slug)
    flag = request.GET.get("flag") if request.GET.get("flag") in FLAG_NAMES else None
    after = query_id(request.GET.get("after"))
    pair = pair_claim(project=membership.project, reviewer=request.user, flag=flag, exclude=(after,) if after else ())
    if pair is None:
        return HttpResponse(status=204)
    context = {
        "project": membership.project,
        "membership": membership,
        "flag": flag,
        "reasons": PRESET_REASONS,
        "form": None,
        **_pair_context(pair_for_review(pair_id=pair.pk)),
    }
    return render(request, "review/_pair.html", context)


@login_required_or_401
@require_POST
def decide(request, slug: str, pk: int):
    membership = get_membership(request, slug)
    pair = get_object_or_404(QAPair, project=membership.project, pk=pk)
    flag = request.POST.get("flag") if request.POST.get("flag") in FLAG_NAMES else None
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _render(request, membership, pair_for_review(pair_id=pair.pk), flag=flag, form=form, status=400)
    data = ReviewInput(
        decision=form.cleaned_data["decision"],
        version=form.cleaned_data["version"],
        question=form.cleaned_data["question"],
        answer=form.cleaned_data["answer"],
        reason=form.full_reason(),
        confirm=form.cleaned_data["confirm"],
    )
    try:
        pair_review(pair_id=pair.pk, reviewer=request.user, data=data)
    except ReviewConflict as exc:
        # The pair as it is now, leased to the reviewer where nobody else holds it, so they can decide again on it.
        pair_lease(project=membership.project, reviewer=request.user, pair_id=pair.pk)
        return _render(request, membership, pair_for_review(pair_id=pair.pk), flag=flag, form=form, conflict=str(exc), status=409)
    except ValidationError as exc:
        add_errors(form, exc)
        return _render(request, membership, pair_for_review(pair_id=pair.pk), flag=flag, form=form, status=400)
    return redirect(_queue_url(slug, flag))


@login_required
@require_POST
def undo(request, slug: str):
    membership = get_membership(request, slug)
    flag = request.POST.get("flag") if request.POST.get("flag") in FLAG_NAMES else None
    try:
        pair = review_undo(project=membership.project, reviewer=request.user)
    except AlreadyUndone as exc:
        messages.info(request, str(exc))
        held = exc.pair.status == PairStatus.PENDING and exc.pair.claimed_by_id == request.user.pk
        return redirect(_queue_url(slug, flag, exc.pair.pk if held else None))  # the pair it gave back stays on screen
    except (ValidationError, ReviewConflict) as exc:
        messages.error(request, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        return redirect(_queue_url(slug, flag))
    messages.success(request, f"Undone: pair {pair.pk} is back with you.")
    return redirect(_queue_url(slug, flag, pair.pk))


def _filter_items(form: PairFilterForm) -> list[tuple[str, str]]:
    """The filter as the admin typed it, field by field, to carry into the bulk forms unchanged."""
    return [(name, form.data[name]) for name in form.fields if form.data.get(name, "") != ""]


def _pairs_url(slug: str, filter_items: list[tuple[str, str]]) -> str:
    url = reverse("review:pairs", args=[slug])
    return f"{url}?{urlencode(filter_items)}" if filter_items else url


@login_required
def pair_browser(request, slug: str):
    project = get_project_for_admin(request, slug)
    form = PairFilterForm(request.GET or None)
    # A filter that does not validate lists nothing (with its errors), never the whole project as if unfiltered.
    valid = not form.is_bound or form.is_valid()
    params = form.cleaned_data if form.is_bound and valid else {}
    pairs = pairs_filtered(project=project, params=params) if valid else QAPair.objects.none()
    page = Paginator(pairs, 50).get_page(request.GET.get("page"))
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    # A bulk action acts on the set shown; with a filter that does not validate, none is offered.
    bulk_allowed = valid
    return render(
        request,
        "review/pairs.html",
        {
            "project": project,
            "form": form,
            "page": page,
            "query": urlencode(query),
            "count": page.paginator.count,
            "bulk_form": BulkRejectForm(),
            "bulk_allowed": bulk_allowed,
            "filter_items": _filter_items(form) if form.is_bound else [],
            "pending_count": pairs.filter(status=PairStatus.PENDING).count() if bulk_allowed else 0,
            "bulk_actions": BulkAction.objects.filter(project=project).select_related("created_by", "undone_by")[:10],
        },
    )


def _confirm_page(request, project, *, filter_items, reason, selection, changed=None, status=200):
    sample = QAPair.objects.filter(pk__in=selection.ids[:50]).select_related("chunk__document").order_by("id")
    return render(
        request,
        "review/bulk_confirm.html",
        {
            "project": project,
            "filter_items": filter_items,
            "reason": reason,
            "selection": selection,
            "sample": sample,
            "changed": changed,
            "back": _pairs_url(project.slug, filter_items),
        },
        status=status,
    )


@login_required
@require_POST
def bulk_reject(request, slug: str):
    """Two steps: without a confirmation, the page says exactly which pending pairs would be rejected; the
    confirmation sends back that set's count and digest, and a set that changed meanwhile is shown again, untouched."""
    project = get_project_for_admin(request, slug)
    filters = PairFilterForm(request.POST)
    bulk = BulkRejectForm(request.POST)
    filter_items = _filter_items(filters)
    if not filters.is_valid():
        messages.error(request, "The filter is not valid; nothing was rejected.")
        return redirect(_pairs_url(slug, filter_items))
    if not bulk.is_valid():
        messages.error(request, "Give a reason for the bulk rejection.")
        return redirect(_pairs_url(slug, filter_items))
    pairs = pairs_filtered(project=project, params=filters.cleaned_data)
    reason = bulk.cleaned_data["reason"]
    if "confirm" not in request.POST:
        return _confirm_page(
            request,
            project,
            filter_items=filter_items,
            reason=reason,
            selection=bulk_reject_selection(project=project, pairs=pairs),
        )
    confirm = BulkConfirmForm(request.POST)
    if not confirm.is_valid():
        return _confirm_page(
            request,
            project,
            filter_items=filter_items,
            reason=reason,
            status=400,
            selection=bulk_reject_selection(project=project, pairs=pairs),
            changed="The confirmation did not say which set it confirms; check the set again.",
        )
    try:
        action = pairs_bulk_reject_confirmed(
            project=project,
            admin=request.user,
            pairs=pairs,
            reason=reason,
            filters=dict(filter_items),
            confirmed=(confirm.cleaned_data["count"], confirm.cleaned_data["digest"]),
        )
    except BulkSelectionChanged as exc:
        return _confirm_page(
            request,
            project,
            filter_items=filter_items,
            reason=reason,
            selection=exc.selection,
            changed=str(exc) + " Nothing was rejected; check the set again.",
            status=409,
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(_pairs_url(slug, filter_items))
    messages.success(
        request,
        f"Rejected {action.pair_count} pending pair{'s' if action.pair_count != 1 else ''} "
        f"(bulk action {action.pk}); each decision is in the pairs' history, and the action can be undone below.",
    )
    return redirect(_pairs_url(slug, filter_items))


@login_required
@require_POST
def bulk_undo(request, slug: str, pk: int):
    project = get_project_for_admin(request, slug)
    action = get_object_or_404(BulkAction, project=project, pk=pk)
    try:
        action = bulk_action_undo(project=project, action_id=action.pk, admin=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("review:pairs", slug=slug)
    report = action.undo_report
    messages.success(
        request,
        f"Undid bulk action {action.pk}: {report['reverted']} pair{'s' if report['reverted'] != 1 else ''} "
        "back to their state before it.",
    )
    kept = report["not_reverted"]
    if kept:
        more = f"; and {len(kept) - 20} more, listed under Bulk actions" if len(kept) > 20 else ""
        messages.warning(
            request,
            f"{len(kept)} pair{'s' if len(kept) != 1 else ''} changed since and were left as they are: "
            + "; ".join(f"pair {k['pair']}: {k['why']}" for k in kept[:20])
            + more,
        )
    return redirect("review:pairs", slug=slug)


def dashboard_charts(*, project, calibration) -> dict:
    from workbench.review.charts import Series, bar_chart
    from workbench.review.trends import flag_rates_by_run, generation_trend, review_trends

    reviews = review_trends(project=project)
    generation = generation_trend(project=project)
    runs = flag_rates_by_run(project=project)
    decided = [row for row in calibration if row["flagged_decided"] or row["clean_decided"]]
    return {
        "reviews_unit": reviews["unit"],
        "reviews": bar_chart(
            reviews["labels"],
            [Series(name, values) for name, values in reviews["by_reviewer"]],
            chart_id="svg-reviews",
            title="Reviews by reviewer",
            stacked=True,
            unit=" decisions",
            width=1200,
        ),
        "rates": bar_chart(
            reviews["labels"],
            [Series("approved", reviews["approval_rate"]), Series("rejected", reviews["rejection_rate"])],
            chart_id="svg-rates",
            title="Approval and rejection rates",
            percent=True,
        ),
        "generation": bar_chart(
            generation["labels"],
            [Series("pairs per hour", generation["pairs_per_hour"])],
            chart_id="svg-generation",
            title="Pairs generated per hour",
        ),
        "flags_by_run": bar_chart(
            runs["labels"],
            [Series(name, values) for name, values in runs["rates"].items()],
            chart_id="svg-flags-by-run",
            title="Flag rates per run",
            percent=True,
        ),
        "calibration": bar_chart(
            [row["name"] for row in decided],
            [
                Series("rejected when flagged", [row["flagged_rejected_rate"] or 0.0 for row in decided]),
                Series("rejected when not flagged", [row["clean_rejected_rate"] or 0.0 for row in decided]),
            ],
            chart_id="svg-calibration",
            title="Filter calibration",
            percent=True,
        ),
    }


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
    calibration = flag_calibration(project=project)
    return render(
        request,
        "review/dashboard.html",
        {
            "project": project,
            "membership": membership,
            "stats": stats,
            "statuses": [(label, stats["by_status"].get(value, 0)) for value, label in QAPair._meta.get_field("status").choices],
            "calibration": calibration,
            "charts": dashboard_charts(project=project, calibration=calibration),
            "throughput": reviewer_throughput(project=project),
            "run": run,
            "progress": run_progress(run=run) if run else None,
            "audit": audit_agreement(project=project)["overall"],
        },
    )


@login_required
def pair_page(request, slug: str, pk: int):
    """One pair for an admin: source with highlights, every version with who, when and why, flags with their reasons,
    provenance, and the admin's actions (reject, reopen)."""
    project = get_project_for_admin(request, slug)
    pair = get_object_or_404(QAPair, project=project, pk=pk)
    status, error, conflict = 200, None, None
    if request.method == "POST":
        try:
            version = int(request.POST.get("version", ""))
            if not 1 <= version < 2**31:
                raise ValueError
        except ValueError:
            error, status = "The form is missing the pair's version; reload the page.", 400
        else:
            action = request.POST.get("action", "")
            try:
                pair_admin_decide(
                    pair_id=pair.pk, admin=request.user, action=action, version=version, reason=request.POST.get("reason", "")
                )
            except ReviewConflict as exc:
                conflict, status = str(exc), 409
            except ValidationError as exc:
                error, status = " ".join(exc.messages), 400
            else:
                messages.success(request, f"Pair {pair.pk} {'rejected' if action == 'reject' else 'reopened'}.")
                return redirect("review:pair", slug, pair.pk)
    context = _pair_context(pair_for_review(pair_id=pair.pk))
    context["history"] = list(history_for_pair(pair=pair))
    return render(
        request,
        "review/pair.html",
        {
            "project": project,
            "error": error,
            "conflict": conflict,
            **context,
            "parameters": context["run"].parameters if context["run"] else {},
        },
        status=status,
    )
