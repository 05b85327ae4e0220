"""Deleting a document (its page, the Django admin) or a project (the Django admin): what was made from it goes with
it (chunks, generations, pairs with their reviews and flags), other documents stay, and nothing is deleted while a run
of the project is live."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs, make_project
from workbench.documents.models import Chunk, SourceDocument
from workbench.generation.models import Generation, GenerationRun, QAPair, RunStatus
from workbench.projects.models import Project
from workbench.quality.models import PairFlag
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewInput, pair_claim, pair_review


@pytest.fixture
def two_documents(project, reviewer):
    doomed = make_pairs(project, 3, with_generation=True, flags_every=2)
    kept = make_pairs(project, 2, with_generation=True)
    GenerationRun.objects.filter(project=project).update(status=RunStatus.SUCCEEDED)
    pair = pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", pair.version, confirm=True))
    assert pair.pk == doomed[0].pk
    return doomed[0].chunk.document, kept[0].chunk.document


def test_an_admin_deletes_a_document_with_what_was_made_from_it(client, owner, reviewer, outsider, project, two_documents):
    doomed, kept = two_documents
    url = reverse("documents:delete", args=[project.slug, doomed.pk])
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.get(url).status_code == 403 and client.post(url).status_code == 403
    client.login(username=outsider.username, password=PASSWORD)
    assert client.post(url).status_code == 404
    client.login(username=owner.username, password=PASSWORD)
    listing = client.get(reverse("documents:list", args=[project.slug])).content.decode()
    assert url in listing
    page = client.get(url).content.decode()
    assert "<strong>1</strong> chunk," in page and "<strong>3</strong> pairs" in page and "(1 reviewed)" in page
    assert "<strong>1</strong> review decision " in page
    done = client.post(url, follow=True)
    assert "Deleted “문서" in done.content.decode() and "1 chunks and 3 pairs" in done.content.decode()
    assert not SourceDocument.objects.filter(pk=doomed.pk).exists()
    assert not Chunk.objects.filter(document_id=doomed.pk).exists()
    assert not QAPair.objects.filter(chunk__document_id=doomed.pk).exists()
    assert Generation.objects.count() == 2 and QAPair.objects.count() == 2
    assert not ReviewDecision.objects.exists() and not PairFlag.objects.exists()
    assert SourceDocument.objects.filter(pk=kept.pk).exists() and Chunk.objects.filter(document=kept).count() == 1


def test_nothing_is_deleted_while_a_run_of_the_project_is_live(client, owner, project, two_documents):
    doomed, _ = two_documents
    run = GenerationRun.objects.create(project=project, status=RunStatus.RUNNING)
    client.login(username=owner.username, password=PASSWORD)
    page = client.post(reverse("documents:delete", args=[project.slug, doomed.pk]), follow=True).content.decode()
    assert f"Run {run.pk} of project Korean news is generating" in page
    admin_page = client.get(reverse("admin:documents_sourcedocument_delete", args=[doomed.pk])).content.decode()
    assert f"Run {run.pk} of project Korean news is generating" in admin_page
    client.post(reverse("admin:documents_sourcedocument_delete", args=[doomed.pk]), {"post": "yes"})
    client.post(reverse("admin:projects_project_delete", args=[project.pk]), {"post": "yes"})
    assert SourceDocument.objects.filter(pk=doomed.pk).exists() and QAPair.objects.count() == 5
    assert Project.objects.filter(pk=project.pk).exists()


def test_a_superuser_deletes_documents_and_projects_in_the_admin(
    client, owner, project, two_documents, settings, tmp_path, django_capture_on_commit_callbacks
):
    from workbench.exports.models import Export

    settings.MEDIA_ROOT = str(tmp_path)
    export = Export.objects.create(project=project, created_by=owner, format="messages", options={})
    (tmp_path / "exports" / str(export.pk)).mkdir(parents=True)
    (tmp_path / "exports" / str(export.pk) / "train.jsonl").write_text("{}")
    doomed, kept = two_documents
    other = make_project(slug="other", admins=[owner])
    make_pairs(other, 2, with_generation=True)
    GenerationRun.objects.filter(project=other).update(status=RunStatus.CANCELLED)
    client.login(username=owner.username, password=PASSWORD)
    confirm = client.get(reverse("admin:documents_sourcedocument_delete", args=[doomed.pk]))
    assert confirm.status_code == 200 and "Are you sure" in confirm.content.decode()
    assert client.post(reverse("admin:documents_sourcedocument_delete", args=[doomed.pk]), {"post": "yes"}).status_code == 302
    assert not SourceDocument.objects.filter(pk=doomed.pk).exists() and QAPair.objects.filter(project=project).count() == 2
    confirm = client.get(reverse("admin:projects_project_delete", args=[project.pk])).content.decode()
    assert "2 pairs" in confirm and "1 review decisions" not in confirm  # counts, not every row
    assert "1 exports (their files too)" in confirm and "2 generation runs" in confirm and "2 memberships" in confirm
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("admin:projects_project_delete", args=[project.pk]), {"post": "yes"}).status_code == 302
    assert not (tmp_path / "exports" / str(export.pk)).exists()  # its files go with it
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not SourceDocument.objects.filter(project_id=project.pk).exists() and not ReviewDecision.objects.exists()
    assert QAPair.objects.filter(project=other).count() == 2  # another project untouched


def _everything(project, user):
    """One row of every kind a project holds: pairs from a run (batch, generations) and imported ones, flags, question
    bands and an embedding, a review decision made by a bulk action, an audit of it, an export, an import job, a
    scoring job, an embedding check waiting for the broker."""
    from workbench.documents.models import ImportJob
    from workbench.exports.models import Export
    from workbench.generation.models import GenerationBatch
    from workbench.quality.models import EmbeddingDispatch, QuestionBand, QuestionEmbedding, ScoringJob
    from workbench.review.models import Audit, AuditItem, BulkAction

    pairs = make_pairs(project, 3, with_generation=True, flags_every=2) + make_pairs(project, 2)
    run = GenerationRun.objects.filter(project=project).get()
    run.status = RunStatus.SUCCEEDED
    run.save()
    GenerationBatch.objects.create(run=run, index=0)
    QuestionBand.objects.create(project=project, pair=pairs[0], band=-1, hash=1)
    QuestionEmbedding.objects.create(project=project, pair=pairs[1], model="e5", vector=b"\0")
    EmbeddingDispatch.objects.create(project=project, pair_ids=[pairs[0].pk])
    action = BulkAction.objects.create(project=project, created_by=user, decision="reject", pair_count=1)
    decision = ReviewDecision.objects.create(
        pair=pairs[3], reviewer=user, decision="reject", status_before="pending", status_after="rejected",
        version_before=1, bulk_action=action,
    )  # fmt: skip
    audit = Audit.objects.create(project=project, created_by=user, sample_size=1)
    AuditItem.objects.create(
        audit=audit, pair=pairs[3], decision=decision, reviewer=user, pair_version=2, question="q", answer="a"
    )
    Export.objects.create(project=project, created_by=user, format="messages", options={})
    ImportJob.objects.create(project=project)
    ScoringJob.objects.create(project=project)


def _row_counts():
    from django.apps import apps

    return {m._meta.label: m._base_manager.count() for m in apps.get_models() if m._meta.app_label in WORKBENCH_APPS}


WORKBENCH_APPS = {"projects", "documents", "generation", "quality", "review", "exports"}


def test_a_deleted_project_leaves_the_database_as_it_was_before_it(owner, reviewer):
    """Every table, walked as Django's collector walks it (hidden relations too): deleting a project whose rows of
    every kind exist gives back exactly the row counts from before it was made, and another project keeps its own."""
    from workbench.documents.services import project_delete

    other = make_project(slug="other", admins=[owner])
    _everything(other, owner)
    before = _row_counts()
    doomed = make_project(slug="doomed", admins=[owner], reviewers=[reviewer])
    _everything(doomed, owner)
    assert all(before.values()) and all(n > before[label] for label, n in _row_counts().items()), "a kind of row is missing"
    project_delete(project=doomed)
    assert _row_counts() == before
    assert QAPair.objects.filter(project=other).count() == 5


def test_a_deletion_too_large_for_a_request_is_refused_there_and_made_by_the_command(
    client, owner, project, two_documents, settings, monkeypatch
):
    """Above DELETE_INLINE_MAX_PAIRS a page or the admin would outlast the request (and roll back): they say so and name
    the command, which deletes the same way, after a confirmation."""
    from django.core.management import CommandError, call_command

    doomed, kept = two_documents
    settings.DELETE_INLINE_MAX_PAIRS = 2
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("documents:delete", args=[project.slug, doomed.pk])
    page = client.get(url).content.decode()
    expected = f"3 pairs go with this deletion, more than a request deletes in time (2, DELETE_INLINE_MAX_PAIRS): run `python manage.py delete_project {project.slug} --document ID`"
    assert expected in page and "Delete the document and all of this" not in page
    assert expected in client.post(url, follow=True).content.decode()
    admin_page = client.get(reverse("admin:projects_project_delete", args=[project.pk])).content.decode()
    assert "5 pairs go with this deletion" in admin_page and f"delete_project {project.slug}`" in admin_page
    client.post(reverse("admin:projects_project_delete", args=[project.pk]), {"post": "yes"})
    assert SourceDocument.objects.filter(pk=doomed.pk).exists() and QAPair.objects.count() == 5

    with pytest.raises(CommandError, match="has no document 999999"):
        call_command("delete_project", project.slug, "--document", "999999", "--yes")
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing deleted"):
        call_command("delete_project", project.slug, "--document", str(doomed.pk))
    assert SourceDocument.objects.filter(pk=doomed.pk).exists()
    call_command("delete_project", project.slug, "--document", str(doomed.pk), "--yes")
    assert not SourceDocument.objects.filter(pk=doomed.pk).exists() and QAPair.objects.count() == 2
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("delete_project", project.slug)
    assert not Project.objects.filter(pk=project.pk).exists() and not SourceDocument.objects.filter(pk=kept.pk).exists()
    with pytest.raises(CommandError, match="No project with slug"):
        call_command("delete_project", project.slug, "--yes")
