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
