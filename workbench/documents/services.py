"""Writes of source documents."""
from __future__ import annotations

import hashlib
import re
import unicodedata

from django.db import transaction

from workbench.documents.models import SourceDocument
from workbench.projects.models import Project

# C0/C1 control characters except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def normalize_text(text: str) -> str:
    """NFC (macOS writes NFD, which breaks search, dedup and filters), LF line ends, no stray control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    return unicodedata.normalize("NFC", text).strip("\ufeff")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@transaction.atomic
def source_document_create(
    *,
    project: Project,
    text: str,
    title: str = "",
    metadata: dict | None = None,
    external_id: str = "",
    origin_filename: str = "",
    origin_size: int | None = None,
    origin_sha256: str = "",
) -> tuple[SourceDocument, bool]:
    """Store a document once per project: the same normalised content returns the existing row (created=False)."""
    text = normalize_text(text)
    if not text.strip():
        raise ValueError("The document has no text.")
    return SourceDocument.objects.get_or_create(
        project=project,
        content_hash=content_hash(text),
        defaults={
            "text": text,
            "title": unicodedata.normalize("NFC", title),
            "metadata": metadata or {},
            "external_id": external_id,
            "origin_filename": origin_filename,
            "origin_size": origin_size,
            "origin_sha256": origin_sha256,
        },
    )
