"""`manage.py generate`: bad arguments stop it with a message, and nothing is created."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import GenerationRun


@pytest.mark.parametrize("size", ["-3", "0"])
def test_chunks_per_batch_below_one_is_refused_by_name(project, size):
    doc = SourceDocument.objects.create(project=project, content_hash="g", text="대한민국은 민주공화국이다.")
    Chunk.objects.create(document=doc, chunking_key="k", index=0, text="대한민국", start=0, end=4, size=4)
    with pytest.raises(CommandError, match=f"Chunks per batch must be at least 1, not {size}"):
        call_command("generate", "--project", project.slug, "--batch-chunks", size)
    assert not GenerationRun.objects.exists()


def test_an_unknown_project_is_named(db):
    with pytest.raises(CommandError, match="No project with slug 'nowhere'"):
        call_command("generate", "--project", "nowhere")
