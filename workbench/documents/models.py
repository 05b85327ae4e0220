"""Source documents imported into a project, the chunks they are cut into, and imports that run in the background."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from workbench.jobs import ACTIVE, JobStatus
from workbench.projects.models import Project


class SourceDocument(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="documents")
    # sha256 of the normalised (NFC, LF) text: re-importing the same content creates nothing new.
    content_hash = models.CharField(max_length=64)
    external_id = models.CharField(max_length=300, blank=True)
    title = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    origin_filename = models.CharField(max_length=500, blank=True)
    origin_size = models.BigIntegerField(null=True, blank=True)
    origin_sha256 = models.CharField(max_length=64, blank=True)
    origin_locator = models.CharField(max_length=200, blank=True, help_text="Record, line or row within the file.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="document_unique_content_per_project"),
        ]

    def __str__(self) -> str:
        return self.title or f"Document {self.pk}"


class Chunk(models.Model):
    document = models.ForeignKey(SourceDocument, on_delete=models.CASCADE, related_name="chunks")
    # Chunks are immutable: re-chunking after a settings change writes a new set (a new key) and retires the old
    # one, so pairs stay attached to the exact text they were generated from.
    chunking_key = models.CharField(max_length=64, help_text="Hash of the chunking settings that produced this chunk.")
    index = models.PositiveIntegerField()
    text = models.TextField()
    start = models.PositiveIntegerField(help_text="Character offset of the chunk's first character in the document.")
    end = models.PositiveIntegerField(help_text="Character offset just past the chunk's last character.")
    size = models.PositiveIntegerField(help_text="Size in the project's chunk unit (characters or tokens).")
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["document", "chunking_key", "index"], name="chunk_unique_index"),
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="chunk_offsets_ordered"),
        ]
        indexes = [
            models.Index(fields=["document", "index"], condition=Q(is_current=True), name="chunk_current_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.index}"


class ImportJob(models.Model):
    """A large upload, stored under MEDIA_ROOT and imported by a CPU worker; the row holds its progress and report."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    fields = models.JSONField(default=dict, blank=True, help_text="Record fields holding the text, title and id.")
    # [{"name": the uploaded file's name, "path": where it is stored, relative to MEDIA_ROOT, "size": bytes}]
    uploads = models.JSONField(default=list, blank=True)
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Claims by deliveries of its message (workbench.jobs.job_run): a job whose worker died is resumed, a few times.
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE
