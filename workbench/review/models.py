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
    REOPEN = "reopen", "Reopen"


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
    # The pair browser's bulk action that made this decision (or undid one), if any.
    bulk_action = models.ForeignKey("BulkAction", null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A double-submitted decision against the same version records once.
            models.UniqueConstraint(
                fields=["pair", "version_before"], condition=~Q(decision="skip"), name="decision_once_per_version"
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer", "created_at"]),
            # The claim looks up the reviewer's skips of the session on every pick.
            models.Index(fields=["reviewer", "created_at"], condition=Q(decision="skip"), name="decision_skip_idx"),
        ]


class BulkAction(models.Model):
    """One bulk action of the pair browser: the filter and reason it was confirmed with, the pairs it decided (their
    decisions link to it), and its undo, which is recorded as decisions too and reports the pairs it left alone."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="bulk_actions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    filters = models.JSONField(default=dict, blank=True)
    pair_count = models.PositiveIntegerField()
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    undone_at = models.DateTimeField(null=True, blank=True)
    # {"reverted": n, "not_reverted": [{"pair": id, "why": text}, ...]}
    undo_report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Audit(models.Model):
    """A second pass over a random sample of approved pairs: another member says whether they agree."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="audits")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audits_created")
    created_at = models.DateTimeField(auto_now_add=True)
    sample_size = models.PositiveIntegerField()
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only pairs approved by this reviewer (blank: every reviewer).",
    )

    class Meta:
        ordering = ["-created_at"]


class Verdict(models.TextChoices):
    AGREE = "agree", "Agree"
    DISAGREE = "disagree", "Disagree"


class AuditItem(models.Model):
    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="items")
    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="audit_items")
    # The first-pass decision under audit and the pair as it was approved.
    decision = models.ForeignKey(ReviewDecision, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    pair_version = models.PositiveIntegerField()
    question = models.TextField()
    answer = models.TextField()
    auditor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_items"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    note = models.TextField(blank=True)
    rejected_pair = models.BooleanField(default=False)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["pair"], name="audit_pair_once")]
        indexes = [models.Index(fields=["audit"], condition=Q(verdict=""), name="audit_open_idx")]
