"""Reads for the quality page: flag rates and the calibration of each filter against reviewers' decisions."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q

from workbench.generation.models import PairStatus, QAPair
from workbench.projects.models import Project
from workbench.quality.filters import FLAG_NAMES, FilterConfig
from workbench.quality.models import PairFlag, ScoringJob

DECIDED = [PairStatus.APPROVED, PairStatus.EDITED, PairStatus.REJECTED]


def flag_calibration(*, project: Project) -> list[dict]:
    """Per flag: how often reviewers rejected the pairs it flagged, and the pairs it did not flag. A filter whose
    flagged pairs are mostly approved is too strict; many rejections among unflagged pairs, too loose."""
    pairs = QAPair.objects.filter(project=project)
    total = pairs.count()
    rows = []
    for name in FLAG_NAMES:
        flagged = Exists(PairFlag.objects.filter(pair=OuterRef("pk"), name=name))
        stats = pairs.annotate(f=flagged).aggregate(
            flagged=Count("id", filter=Q(f=True)),
            flagged_decided=Count("id", filter=Q(f=True, status__in=DECIDED)),
            flagged_rejected=Count("id", filter=Q(f=True, status=PairStatus.REJECTED)),
            clean_decided=Count("id", filter=Q(f=False, status__in=DECIDED)),
            clean_rejected=Count("id", filter=Q(f=False, status=PairStatus.REJECTED)),
        )
        rows.append(
            {
                "name": name,
                "flagged": stats["flagged"],
                "rate": stats["flagged"] / total if total else 0.0,
                "percent": 100 * stats["flagged"] / total if total else 0.0,  # shown to one decimal: 1 of 36 is 2.8%
                "flagged_decided": stats["flagged_decided"],
                "flagged_rejected_rate": stats["flagged_rejected"] / stats["flagged_decided"]
                if stats["flagged_decided"]
                else None,
                "clean_decided": stats["clean_decided"],
                "clean_rejected_rate": stats["clean_rejected"] / stats["clean_decided"] if stats["clean_decided"] else None,
            }
        )
    return rows


def effective_thresholds(*, project: Project) -> dict:
    cfg = FilterConfig.from_overrides(project.filter_thresholds)
    return {"thresholds": cfg.thresholds, "severities": cfg.severities, "overridden": sorted(project.filter_thresholds)}


def latest_scoring_job(*, project: Project) -> ScoringJob | None:
    return ScoringJob.objects.filter(project=project).first()
