"""Reads of documents and chunks."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from workbench.documents.models import SourceDocument
from workbench.projects.models import Project


def documents_for_project(*, project: Project) -> QuerySet[SourceDocument]:
    return (
        SourceDocument.objects.filter(project=project)
        .annotate(chunk_count=Count("chunks", filter=Q(chunks__is_current=True)))
        .defer("text")
        .order_by("id")
    )


def size_histogram(sizes: list[int], *, bins: int = 10) -> list[dict]:
    if not sizes:
        return []
    low, high = min(sizes), max(sizes)
    width = max(1, -(-(high - low + 1) // bins))
    counts = [0] * bins
    for size in sizes:
        counts[min(bins - 1, (size - low) // width)] += 1
    peak = max(counts)
    return [
        {"low": low + i * width, "high": low + (i + 1) * width - 1, "count": c, "peak": peak}
        for i, c in enumerate(counts)
        if low + i * width <= high
    ]
