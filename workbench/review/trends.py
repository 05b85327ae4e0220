"""The dashboard's figures over time: reviews per reviewer, approval and rejection rates, pairs generated, and flag
rates per generation run. Buckets are hours over the last two days of activity, else days over the last 60."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from workbench.generation.models import QAPair
from workbench.projects.models import Project
from workbench.quality.models import PairFlag
from workbench.review.models import Decision, ReviewDecision

MAX_HOURS = 48
MAX_DAYS = 60


def buckets_for(first: datetime | None, last: datetime | None) -> tuple[str, list[datetime]]:
    """("hour" or "day", the bucket starts from the first to the last activity, at most 48 hours or 60 days)."""
    if first is None or last is None:
        return "hour", []
    first, last = timezone.localtime(first), timezone.localtime(last)
    if last - first <= timedelta(hours=MAX_HOURS):
        unit, step = "hour", timedelta(hours=1)
        start = first.replace(minute=0, second=0, microsecond=0)
        end = last.replace(minute=0, second=0, microsecond=0)
    else:
        unit, step = "day", timedelta(days=1)
        start = first.replace(hour=0, minute=0, second=0, microsecond=0)
        end = last.replace(hour=0, minute=0, second=0, microsecond=0)
        start = max(start, end - timedelta(days=MAX_DAYS - 1))
    starts = []
    t = start
    while t <= end:
        starts.append(t)
        t += step
    return unit, starts


def label(t: datetime, unit: str) -> str:
    return t.strftime("%m-%d %H:00") if unit == "hour" else t.strftime("%m-%d")


def _trunc(unit: str):
    return TruncHour("created_at") if unit == "hour" else TruncDay("created_at")


def review_trends(*, project: Project) -> dict:
    decisions = ReviewDecision.objects.filter(pair__project=project).exclude(decision__in=[Decision.SKIP, Decision.UNDO])
    span = decisions.aggregate(first=Min("created_at"), last=Max("created_at"))
    unit, starts = buckets_for(span["first"], span["last"])
    index = {timezone.localtime(t): i for i, t in enumerate(starts)}
    by_reviewer: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(starts))
    approved, rejected, decided = [0.0] * len(starts), [0.0] * len(starts), [0.0] * len(starts)
    if starts:
        rows = (
            decisions.filter(created_at__gte=starts[0])
            .annotate(t=_trunc(unit))
            .values("t", "reviewer__username", "decision")
            .annotate(n=Count("id"))
        )
        for row in rows:
            i = index.get(timezone.localtime(row["t"]))
            if i is None:
                continue
            by_reviewer[row["reviewer__username"]][i] += row["n"]
            decided[i] += row["n"]
            if row["decision"] in (Decision.APPROVE, Decision.EDIT):
                approved[i] += row["n"]
            elif row["decision"] == Decision.REJECT:
                rejected[i] += row["n"]
    rate = lambda part: [p / d if d else 0.0 for p, d in zip(part, decided)]  # noqa: E731
    return {
        "unit": unit,
        "labels": [label(t, unit) for t in starts],
        "by_reviewer": sorted(by_reviewer.items(), key=lambda kv: -sum(kv[1])),
        "approval_rate": rate(approved),
        "rejection_rate": rate(rejected),
    }


def generation_trend(*, project: Project) -> dict:
    """Pairs written per hour, bucketed like the reviews (a daily bucket is divided by 24)."""
    pairs = QAPair.objects.filter(project=project, generation__isnull=False)
    span = pairs.aggregate(first=Min("created_at"), last=Max("created_at"))
    unit, starts = buckets_for(span["first"], span["last"])
    index = {timezone.localtime(t): i for i, t in enumerate(starts)}
    per_hour = [0.0] * len(starts)
    if starts:
        for row in pairs.filter(created_at__gte=starts[0]).annotate(t=_trunc(unit)).values("t").annotate(n=Count("id")):
            i = index.get(timezone.localtime(row["t"]))
            if i is not None:
                per_hour[i] = row["n"] / (1 if unit == "hour" else 24)
    return {"unit": unit, "labels": [label(t, unit) for t in starts], "pairs_per_hour": per_hour}


def flag_rates_by_run(*, project: Project, runs: int = 12) -> dict:
    """For the latest runs: the share of each run's pairs that each flag marked."""
    totals = dict(
        QAPair.objects.filter(project=project, generation__isnull=False)
        .values_list("generation__run_id")
        .annotate(n=Count("id"))
        .values_list("generation__run_id", "n")
    )
    run_ids = sorted(totals)[-runs:]
    counts = (
        PairFlag.objects.filter(pair__project=project, pair__generation__run_id__in=run_ids)
        .values("pair__generation__run_id", "name")
        .annotate(n=Count("pair_id", distinct=True))
    )
    names = sorted({c["name"] for c in counts})
    rates = {name: [0.0] * len(run_ids) for name in names}
    position = {run_id: i for i, run_id in enumerate(run_ids)}
    for c in counts:
        rates[c["name"]][position[c["pair__generation__run_id"]]] = c["n"] / totals[c["pair__generation__run_id"]]
    return {"labels": [f"run {r}" for r in run_ids], "rates": rates}


__all__ = ["review_trends", "generation_trend", "flag_rates_by_run", "buckets_for"]
