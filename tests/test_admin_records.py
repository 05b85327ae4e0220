"""The Django admin shows the product's records (chunks, raw generations, pairs) and changes none of them: a pair's text,
status and version change only through a review decision, which keeps the history and catches conflicts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision


@pytest.mark.django_db
def test_a_pair_is_shown_in_the_admin_and_cannot_be_changed_added_or_deleted_there(client, owner, project):
    (pair,) = make_pairs(project, 1, with_generation=True)
    client.login(username=owner.username, password=PASSWORD)
    change = reverse("admin:generation_qapair_change", args=[pair.pk])
    page = client.get(change)
    assert page.status_code == 200 and pair.question in page.content.decode()
    assert 'name="_save"' not in page.content.decode()  # shown read-only
    posted = client.post(change, {"question": "관리자가 몰래 바꾼 질문", "answer": "", "status": PairStatus.APPROVED})
    assert posted.status_code == 403
    stored = QAPair.objects.get(pk=pair.pk)
    assert (stored.question, stored.answer, stored.status, stored.version) == (pair.question, pair.answer, pair.status, 1)
    assert not ReviewDecision.objects.filter(pair=pair).exists()
    for name in ("generation_qapair", "generation_generation", "documents_chunk"):
        assert client.get(reverse(f"admin:{name}_add")).status_code == 403
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert client.post(reverse("admin:generation_qapair_delete", args=[pair.pk]), {"post": "yes"}).status_code == 403
    assert QAPair.objects.filter(pk=pair.pk).exists()


@pytest.mark.django_db
def test_a_staff_project_admin_sees_in_the_admin_only_the_projects_they_administer(client, owner, project):
    """Staff with the models' view permissions (what a project admin needs for the admin's Import documents and Start a
    run links) still sees only their projects' rows, and no other project's name in the filters."""
    from django.contrib.auth.models import Permission

    from tests.factories import make_project, make_user
    from workbench.documents.models import Chunk, SourceDocument
    from workbench.generation.models import Generation, GenerationRun
    from workbench.projects.models import Membership

    carol = make_user("carol", is_staff=True)
    theirs = make_project(slug="carol-b", name="Carol's project", admins=[carol])
    (secret,) = make_pairs(project, 1, with_generation=True, question="다른 프로젝트의 비밀 질문?")
    (own,) = make_pairs(theirs, 1, with_generation=True, question="캐럴의 질문?")
    codenames = ["view_sourcedocument", "view_chunk", "view_qapair", "view_generation", "view_generationrun"]
    carol.user_permissions.add(*Permission.objects.filter(codename__in=codenames + ["view_project", "view_membership"]))
    client.login(username="carol", password=PASSWORD)
    for model, mine, other in [
        (QAPair, own, secret),
        (SourceDocument, own.chunk.document, secret.chunk.document),
        (Chunk, own.chunk, secret.chunk),
        (Generation, own.generation, secret.generation),
        (GenerationRun, own.generation.run, secret.generation.run),
        (type(theirs), theirs, project),
        (Membership, theirs.memberships.first(), project.memberships.first()),
    ]:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        listing = client.get(reverse(f"{name}_changelist"))
        assert listing.status_code == 200, name
        shown = list(listing.context["cl"].queryset)
        assert mine in shown and other not in shown, name
        assert "Korean news" not in listing.content.decode(), name  # the other project's name, in a filter or a row
        assert client.get(reverse(f"{name}_change", args=[mine.pk])).status_code == 200, name
        other_page = client.get(reverse(f"{name}_change", args=[other.pk]), follow=True)
        assert "다른 프로젝트의 비밀 질문" not in other_page.content.decode() and "doesn’t exist" in other_page.content.decode()
    # The superuser still sees everything.
    client.login(username=owner.username, password=PASSWORD)
    shown = list(client.get(reverse("admin:generation_qapair_changelist")).context["cl"].queryset)
    assert secret in shown and own in shown
