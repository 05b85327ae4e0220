"""Exported datasets: what was exported, by whom, with which options, and the manifest of the files."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workbench.jobs import JobStatus
from workbench.projects.models import Project


class ExportFormat(models.TextChoices):
    MESSAGES = "messages", "Chat messages JSONL"
    ALPACA = "alpaca", "Alpaca JSONL"
    SHAREGPT = "sharegpt", "ShareGPT JSONL"
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"
    DPO = "dpo", "DPO preference pairs JSONL"


class Export(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    format = models.CharField(max_length=16, choices=ExportFormat.choices)
    # Statuses, grounding, metadata columns, split settings.
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Claims by deliveries of its message (workbench.jobs.job_run): a job whose worker died is resumed, a few times.
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
