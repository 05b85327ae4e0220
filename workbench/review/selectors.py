"""Reads for the review pages, the pair browser and the dashboard."""

from __future__ import annotations

import unicodedata
from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Project
from workbench.quality.models import PairFlag
from workbench.review.models import Decision, ReviewDecision


def pair_for_review(*, pair_id: int) -> QAPair:
    return (
        QAPair.objects.select_related("chunk", "chunk__document", "generation", "generation__run", "claimed_by")
        .prefetch_related("flag_details")
        .get(pk=pair_id)
    )


def highlighted_segments(text: str, spans: list[dict], *, field: str = "source") -> list[tuple[str, bool]]:
    """Text cut into (segment, is_copied) pieces, for rendering copied spans with <mark> (the template escapes)."""
    key_start, key_end = ("source_start", "source_end") if field == "source" else ("start", "end")
    ranges = sorted((s[key_start], s[key_end]) for s in spans if field == "source" or s.get("field") == field)
    segments, pos = [], 0
    for start, end in ranges:
        start, end = max(start, pos), min(end, len(text))
        if start >= end:
            continue
        if start > pos:
            segments.append((text[pos:start], False))
        segments.append((text[start:end], True))
        pos = end
    if pos < len(text):
        segments.append((text[pos:], False))
    return segments


def pairs_filtered(*, project: Project, params: dict) -> QuerySet[QAPair]:
    """The admin pair browser's filters: status, flag, score range, document, reviewer, run, text search."""
    qs = QAPair.objects.filter(project=project)
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    # A score range applies to the chosen flag's score, or with no flag chosen to any flag's: a pair is listed if it has
    # such a flag (never ignored: a bulk action acts on the set listed).
    scores = {
        lookup: params[key]
        for lookup, key in (("score__gte", "min_score"), ("score__lte", "max_score"))
        if params.get(key) is not None
    }
    if params.get("flag") or scores:
        flag_q = PairFlag.objects.filter(pair=OuterRef("pk"), **scores)
        if params.get("flag"):
            flag_q = flag_q.filter(name=params["flag"])
        qs = qs.filter(Exists(flag_q))
    if params.get("document"):  # part of the title, as people remember documents
        qs = qs.filter(chunk__document__title__icontains=params["document"])
    if params.get("run"):
        qs = qs.filter(generation__run_id=params["run"])
    if params.get("reviewer"):  # part of the username (often an e-mail address), as with document titles
        who = params["reviewer"]
        decided_by = Q(reviewer__username__icontains=who) | Q(reviewer__email__iexact=who)
        qs = qs.filter(Exists(ReviewDecision.objects.filter(decided_by, pair=OuterRef("pk"))))
    if params.get("q"):
        # icontains on PostgreSQL uses the pg_trgm GIN indexes, which work for Korean (no word segmentation needed).
        text = unicodedata.normalize("NFC", params["q"])  # stored text is NFC; a pasted query may not be
        qs = qs.filter(Q(question__icontains=text) | Q(answer__icontains=text))
    return qs.select_related("chunk__document").order_by("id")


def project_stats(*, project: Project) -> dict:
    by_status = dict(
        QAPair.objects.filter(project=project).values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    by_flag = dict(
        PairFlag.objects.filter(pair__project=project).values_list("name").annotate(n=Count("id")).values_list("name", "n")
    )
    return {
        "total": sum(by_status.values()),
        "by_status": {s: by_status.get(s, 0) for s in PairStatus.values},
        "by_flag": by_flag,
    }


def decisions_standing(qs: QuerySet[ReviewDecision]) -> QuerySet[ReviewDecision]:
    """Decisions that count as work done: not a skip or an undo, and not undone since (by the reviewer's own undo, the
    next version of the pair, or by undoing the bulk action it was part of)."""
    undone = ReviewDecision.objects.filter(
        pair=OuterRef("pair"), decision=Decision.UNDO, bulk_action__isnull=True, version_before=OuterRef("version_before") + 1
    )
    return (
        qs.exclude(decision__in=[Decision.SKIP, Decision.UNDO])
        .exclude(bulk_action__undone_at__isnull=False)
        .exclude(Exists(undone))
    )


def reviewer_throughput(*, project: Project, hours: int = 24) -> list[dict]:
    since = timezone.now() - timedelta(hours=hours)
    rows = (
        decisions_standing(ReviewDecision.objects.filter(pair__project=project, created_at__gte=since, is_bulk=False))
        .values("reviewer__username")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return [{"reviewer": r["reviewer__username"], "decisions": r["n"]} for r in rows]


def history_for_pair(*, pair: QAPair):
    return pair.decisions.select_related("reviewer").order_by("-created_at", "-id")
