"""Reviewers' decisions on pairs: the full history of every change."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from workbench.generation.models import QAPair


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    EDIT = "edit", "Edit and approve"
    REJECT = "reject", "Reject"
    SKIP = "skip", "Skip"
    UNDO = "undo", "Undo"


class ReviewDecision(models.Model):
    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    question_before = models.TextField(blank=True)
    answer_before = models.TextField(blank=True)
    question_after = models.TextField(blank=True)
    answer_after = models.TextField(blank=True)
    status_before = models.CharField(max_length=16)
    status_after = models.CharField(max_length=16)
    reason = models.TextField(blank=True)
    # The pair version the decision was made against; a decision that changes the pair takes it to version + 1.
    version_before = models.PositiveIntegerField()
    is_bulk = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A double-submitted decision against the same version records once.
            models.UniqueConstraint(
                fields=["pair", "version_before"], condition=~Q(decision="skip"), name="decision_once_per_version"
            ),
        ]
        indexes = [models.Index(fields=["reviewer", "created_at"])]
