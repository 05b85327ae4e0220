"""Generation runs, their batches, every raw model output, and the question/answer pairs parsed from them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from workbench.documents.models import Chunk
from workbench.projects.models import Project


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Its batches could not be queued (the broker did not answer); nothing ran. Retried from the run page, or by the
    # dispatch sweep once the broker answers.
    DISPATCH_FAILED = "dispatch_failed", "Failed to dispatch"


class PreflightStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a GPU worker"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Could not finish"


class GenerationRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    # Everything that determines the outputs, frozen when the run starts: model and adapter ids and revisions,
    # prompt template and its hash, sampling parameters, samples per chunk.
    parameters = models.JSONField(default=dict)
    chunk_count = models.PositiveIntegerField(default=0)
    samples_expected = models.PositiveIntegerField(default=0)
    samples_done = models.PositiveIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    batches_failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The check a GPU worker makes when the run starts: model, adapter and tokenizer resolve there (no weights read).
    preflight_status = models.CharField(max_length=16, choices=PreflightStatus.choices, blank=True)
    preflight_requested_at = models.DateTimeField(null=True, blank=True)
    preflight_answered_at = models.DateTimeField(null=True, blank=True)
    preflight_worker = models.CharField(max_length=200, blank=True)
    preflight_report = models.TextField(blank=True)  # what resolved, or why the check could not finish
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # [stopped, resumed] (ISO times) for each time the run ended (cancelled, failed) and was resumed: the time between
    # is left out of its rates and ETA.
    pauses = models.JSONField(default=list, blank=True)
    # The client's key for the request that started the run (the API's Idempotency-Key header, the start form's own
    # key): the same request sent again gets this run back instead of a second run on the same chunks.
    request_key = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "status"], condition=Q(status__in=["queued", "running"]), name="run_active_idx")
        ]
        constraints = [
            models.UniqueConstraint(fields=["project", "request_key"], condition=~Q(request_key=""), name="run_request_key_once")
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class GenerationBatch(models.Model):
    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="batches")
    index = models.PositiveIntegerField()
    chunk_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Renewed by the worker while it runs the batch; a running batch whose heartbeat is older than
    # GENERATION_STALE_SECONDS has lost its worker and is queued again by the dispatch sweep.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When its last message was handed to the broker; empty when sending failed (the sweep sends it again).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        indexes = [
            # The dispatch sweep looks only at batches waiting or running.
            models.Index(fields=["status"], condition=Q(status__in=["queued", "running"]), name="batch_active_idx")
        ]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="batch_unique_index_per_run")]


class FinishReason(models.TextChoices):
    STOP = "stop", "End of turn"
    LENGTH = "length", "Token limit"
    UNKNOWN = "unknown", "Unknown"


class Generation(models.Model):
    """One raw model output with full provenance."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="generations")
    chunk = models.ForeignKey(Chunk, on_delete=models.PROTECT, related_name="generations")
    sample_index = models.PositiveSmallIntegerField()
    raw_text = models.TextField()
    finish_reason = models.CharField(max_length=8, choices=FinishReason.choices, default=FinishReason.UNKNOWN)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    gpu_name = models.CharField(max_length=200, blank=True)
    # The sampling actually used, top-k and top-p resolved against the checkpoint: {"temperature", "top_k", "top_p",
    # "max_new_tokens"}.
    sampling = models.JSONField(default=dict, blank=True)
    precision = models.CharField(max_length=40, blank=True)  # the matmuls' arithmetic: "bfloat16", "bfloat16, fp8 prefill", ...
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A retried or duplicated batch cannot write a sample twice.
            models.UniqueConstraint(fields=["run", "chunk", "sample_index"], name="generation_unique_sample"),
        ]


def _shuffle_key() -> int:
    import random

    return random.randrange(2**31)


class PairStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    EDITED = "edited", "Edited and approved"
    REJECTED = "rejected", "Rejected"


class QAPair(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs")
    chunk = models.ForeignKey(Chunk, on_delete=models.PROTECT, related_name="pairs")
    generation = models.OneToOneField(Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="pair")
    question = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    # What the model wrote, kept when a reviewer edits (exports build DPO pairs from the two).
    original_question = models.TextField(blank=True)
    original_answer = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=PairStatus.choices, default=PairStatus.PENDING)
    # Names of the quality flags raised on this pair (details live in quality.PairFlag); is_flagged orders the queue.
    flags = models.JSONField(default=list, blank=True)
    is_flagged = models.BooleanField(default=False)
    # Fixed at creation: the "random" queue order is an index scan, not ORDER BY random() over the project.
    shuffle_key = models.IntegerField(default=_shuffle_key)
    # Optimistic locking: every write bumps the version; a write against a stale version is refused.
    version = models.PositiveIntegerField(default=1)
    # Review lease: who holds the pair and until when.
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # One partial index per queue order: claiming the next pending pair is an index scan at any size.
            models.Index(fields=["project", "id"], condition=Q(status="pending"), name="pair_pending_idx"),
            models.Index(fields=["project", "-is_flagged", "id"], condition=Q(status="pending"), name="pair_pending_flagged_idx"),
            models.Index(fields=["project", "is_flagged", "id"], condition=Q(status="pending"), name="pair_pending_clean_idx"),
            models.Index(fields=["project", "chunk", "id"], condition=Q(status="pending"), name="pair_pending_document_idx"),
            models.Index(fields=["project", "shuffle_key", "id"], condition=Q(status="pending"), name="pair_pending_random_idx"),
            models.Index(fields=["project", "status"], name="pair_project_status_idx"),
            models.Index(fields=["claimed_by", "lease_expires_at"], name="pair_lease_idx"),
        ]
        constraints = [models.CheckConstraint(condition=Q(version__gte=1), name="pair_version_positive")]

    def __str__(self) -> str:
        return f"Pair {self.pk}"
