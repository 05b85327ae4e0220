"""Quality flags raised on pairs by the automatic filters."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workbench.generation.models import QAPair
from workbench.jobs import JobStatus


class FlagName(models.TextChoices):
    MALFORMED = "malformed", "Malformed"
    TRUNCATED = "truncated", "Truncated"
    ECHO = "echo", "Echo of the source"
    DUPLICATE = "duplicate", "Duplicate"
    LANGUAGE = "language", "Wrong language"
    REPETITION = "repetition", "Repetition"
    UNSUPPORTED = "unsupported", "Not supported by the source"


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


class QuestionBand(models.Model):
    """The duplicate-search keys of a pair's question (`workbench.quality.filters.question_bands`), so duplicates are
    found project-wide with an index lookup: band -1 holds the exact key (the question without case, spaces and
    punctuation), band 16 its term keys and band 17 its near-copy keys (several rows each), bands 0-15 the MinHash LSH
    bands of a question without usable terms. Migration 0004 rebuilt the rows of the earlier MinHash-only scheme; a
    re-score (`ScoringJob`) rebuilds a project's rows too."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    pair = models.ForeignKey(QAPair, on_delete=models.CASCADE, related_name="question_bands")
    band = models.SmallIntegerField()
    hash = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["project", "band", "hash"], name="question_band_lookup")]
        constraints = [models.UniqueConstraint(fields=["pair", "band", "hash"], name="question_band_once")]


class ScoringJob(models.Model):
    """Re-scoring a whole project after a threshold change (a Celery task on the default queue)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="scoring_jobs")
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Claims by deliveries of its message (workbench.jobs.job_run): a job whose worker died is resumed, a few times.
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class QuestionEmbedding(models.Model):
    """A question's sentence embedding (float16, L2-normalised) from the project's embedding model, computed on a GPU
    worker, for the optional embedding-similarity duplicate check."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    pair = models.OneToOneField(QAPair, on_delete=models.CASCADE, related_name="question_embedding")
    model = models.CharField(max_length=200)
    vector = models.BinaryField()

    class Meta:
        indexes = [models.Index(fields=["project", "model", "pair"], name="question_embedding_lookup")]


class EmbeddingDispatch(models.Model):
    """Questions whose embedding message the broker did not take (the optional embedding check): the dispatch sweep
    sends them again and deletes the row once the broker takes it."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    pair_ids = models.JSONField()
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
