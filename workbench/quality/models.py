"""Quality flags raised on pairs by the automatic filters."""
from __future__ import annotations

from django.db import models

from workbench.generation.models import QAPair


class FlagName(models.TextChoices):
    MALFORMED = "malformed", "Malformed"
    TRUNCATED = "truncated", "Truncated"
    ECHO = "echo", "Echo of the source"
    DUPLICATE = "duplicate", "Duplicate"
    LANGUAGE = "language", "Wrong language"
    REPETITION = "repetition", "Repetition"


class Severity(models.TextChoices):
    REJECT = "reject", "Reject-level"
    WARNING = "warning", "Warning"


class PairFlag(models.Model):
    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="flag_details")
    name = models.CharField(max_length=16, choices=FlagName.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    score = models.FloatField()
    reason = models.TextField()
    # Per-flag details, e.g. {"spans": [[start, end], ...]} of copied source text for echo.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "name"], name="flag_one_per_name")]
        indexes = [models.Index(fields=["name", "pair"])]
