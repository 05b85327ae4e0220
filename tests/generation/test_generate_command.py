"""`manage.py generate`: bad arguments stop it with a message, and nothing is created."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.generation.test_dispatch import _broker_pools_dropped, broker_down, broker_up, project_with_chunks  # noqa: F401
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import GenerationRun, RunStatus


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


def test_with_the_broker_down_the_run_is_made_once_and_said_to_start_later(transactional_db, owner, tiny_model, monkeypatch):
    """The run exists and the dispatch sweep sends it once the broker answers: the command says so and succeeds, so that
    a script does not start the same run a second time."""
    project, _ = project_with_chunks(owner, tiny_model, 2)
    broker_down(monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("generate", "--project", project.slug, stdout=out, stderr=err)
    finally:
        broker_up(monkeypatch)  # the app's pool made for the dead broker goes with it
    (run,) = GenerationRun.objects.filter(project=project)
    assert run.status == RunStatus.DISPATCH_FAILED
    assert f"Run {run.pk} is created but not started yet" in err.getvalue() and "Do not start it again" in err.getvalue()
    assert "sent again automatically once the broker answers" in err.getvalue()
    assert f"Run {run.pk}: " in out.getvalue()
