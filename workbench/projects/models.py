"""Projects, their generation/chunking/filter settings, and who may work on them."""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.text import normalize_newlines

from workbench.projects.presets import BASE_MODEL_ID, DEFAULT_PRESET, PRESET_CHOICES, PRESETS
from workbench.projects.prompts import validate_prompt_template

DEMO_MODEL_MARK = "workbench-demo-model"


def validate_filter_thresholds(value) -> None:
    """Names the filters know, each with a finite number (severity.NAME: 1 for reject, 0 for warning): a typo or a NaN
    is refused here with what is allowed, instead of being ignored when the filters run (or failing the save)."""
    from workbench.quality.filters import DEFAULTS, SEVERITIES  # above this app: read when a form validates

    example = 'for example {"duplicate.term_similarity": 0.75, "severity.unsupported": 1}'
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()
    ):
        raise ValidationError(f"Filter thresholds must be a JSON object of names to numbers, {example}.")
    errors = []
    for key, number in value.items():
        if key.startswith("severity."):
            if key.split(".", 1)[1] not in SEVERITIES:
                errors.append(f"{key!r}: no such flag (flags: {', '.join(sorted(SEVERITIES))})")
            elif number not in (0, 1):
                errors.append(f"{key!r} must be 1 (reject) or 0 (warning), not {number}")
        elif key not in DEFAULTS:
            errors.append(f"{key!r}: no such threshold (thresholds: {', '.join(sorted(DEFAULTS))})")
        elif not math.isfinite(number) or number < 0:
            errors.append(f"{key!r} must be a finite number of at least 0, not {number}")
    if errors:
        raise ValidationError([f"{e}." for e in errors])


class ChunkUnit(models.TextChoices):
    CHARACTERS = "chars", "Characters"
    TOKENS = "tokens", "Tokens of the project's tokenizer"


class QueueOrder(models.TextChoices):
    FLAGGED_FIRST = "flagged_first", "Flagged first"
    CLEAN_FIRST = "clean_first", "Clean first"
    DOCUMENT_ORDER = "document_order", "Document order"
    RANDOM = "random", "Random"


def _default_preset():
    return PRESETS[DEFAULT_PRESET]


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    # Generation preset. Revisions pin weights: the base repository's main branch changed after the adapters were
    # trained (see README, "Pinning the base model").
    adapter_preset = models.CharField(max_length=32, choices=PRESET_CHOICES, default=DEFAULT_PRESET)
    base_model = models.CharField(max_length=300, default=BASE_MODEL_ID)
    base_model_revision = models.CharField(max_length=100, blank=True)
    adapter = models.CharField(max_length=300, default=_default_preset().adapter_id)
    adapter_revision = models.CharField(max_length=100, blank=True)
    prompt_template = models.TextField(default=_default_preset().prompt_template, validators=[validate_prompt_template])
    temperature = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    # Empty top-k / top-p: as the model card's `generate` call samples, from the base checkpoint's generation config,
    # else transformers' defaults (top-k 50, top-p 1.0); the worker records the values it used with every sample.
    top_p = models.FloatField(
        null=True,
        blank=True,
        default=None,
        validators=[MinValueValidator(0.01), MaxValueValidator(1.0)],
        help_text="Empty: as the model card's call (the checkpoint's generation config, else 1.0).",
    )
    top_k = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        validators=[MaxValueValidator(100_000)],
        help_text="Empty: as the model card's call (the checkpoint's generation config, else 50). 0: no top-k.",
    )
    max_new_tokens = models.PositiveIntegerField(default=256, validators=[MinValueValidator(1), MaxValueValidator(4096)])
    samples_per_chunk = models.PositiveSmallIntegerField(
        default=_default_preset().samples_per_chunk, validators=[MinValueValidator(1), MaxValueValidator(64)]
    )

    # Chunking: the model card asks for texts cut to a suitable size.
    chunk_unit = models.CharField(max_length=8, choices=ChunkUnit.choices, default=ChunkUnit.CHARACTERS)
    chunk_target_size = models.PositiveIntegerField(default=900, validators=[MinValueValidator(50)])
    chunk_max_size = models.PositiveIntegerField(default=1400, validators=[MinValueValidator(50)])
    chunk_overlap = models.PositiveIntegerField(default=0)
    tokenizer = models.CharField(max_length=300, blank=True, help_text="Tokenizer for token-measured chunks.")

    # Quality filters: overrides of the filter defaults, by name ({"echo.question_overlap": 0.6, ...}).
    # Optional embedding similarity of questions on the GPU workers (a sentence-embedding model: a local directory or
    # a hub id such as intfloat/multilingual-e5-small); empty turns it off.
    embedding_model = models.CharField(max_length=200, blank=True, default="")
    filter_thresholds = models.JSONField(default=dict, blank=True, validators=[validate_filter_thresholds])

    # Review queue.
    queue_order = models.CharField(max_length=20, choices=QueueOrder.choices, default=QueueOrder.FLAGGED_FIRST)
    lease_seconds = models.PositiveIntegerField(default=900, validators=[MinValueValidator(30), MaxValueValidator(86400)])

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(chunk_target_size__lte=F("chunk_max_size")),
                name="project_chunk_target_le_max",
                violation_error_message="The chunk target size must not be larger than the chunk maximum size.",
            ),
            models.CheckConstraint(
                condition=Q(chunk_overlap__lt=F("chunk_target_size")),
                name="project_chunk_overlap_lt_target",
                violation_error_message="The chunk overlap must be smaller than the chunk target size.",
            ),
            models.CheckConstraint(
                condition=Q(samples_per_chunk__gte=1),
                name="project_samples_per_chunk_positive",
                violation_error_message="Samples per chunk must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(temperature__gte=0),
                name="project_temperature_non_negative",
                violation_error_message="The temperature must not be negative.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        if self.chunk_unit != ChunkUnit.TOKENS:
            return
        if not self.tokenizer.strip():
            # On the chunk unit: the Tokenizer field may not be on the form of whoever switches the unit.
            raise ValidationError(
                {
                    "chunk_unit": "Token-measured chunks need a tokenizer (the Tokenizer field): a tokenizer.json file, a model directory or a hub id."
                }
            )
        if self.tokenizer.startswith(("/", ".", "~")) or self.tokenizer.endswith(".json"):
            # A local tokenizer is loaded now (a hub id only when chunks are cut, where the hub may be reachable).
            from workbench.documents.chunking import ChunkSettingsError, _load_tokenizer

            try:
                _load_tokenizer(self.tokenizer)
            except Exception as exc:
                error = ChunkSettingsError(f"{type(exc).__name__}: {exc}")
                raise ValidationError({"chunk_unit": f"The tokenizer could not be loaded ({error})."[:600]}) from exc

    def save(self, *args, **kwargs):
        # Browsers submit textareas with "\r\n": a template saved that way would send the model another prompt.
        self.prompt_template = normalize_newlines(self.prompt_template)
        self.description = normalize_newlines(self.description)
        if self.filter_thresholds is None:  # an emptied thresholds box: no overrides
            self.filter_thresholds = {}
        super().save(*args, **kwargs)

    @property
    def uses_demo_model(self) -> bool:
        """The tiny model the single-machine start trains (workers/demo_model.py), not ko-genstruct."""
        return DEMO_MODEL_MARK in self.base_model or DEMO_MODEL_MARK in self.adapter


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    REVIEWER = "reviewer", "Reviewer"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REVIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_one_per_user")]
        indexes = [models.Index(fields=["user", "project"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN
