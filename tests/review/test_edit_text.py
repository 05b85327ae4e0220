"""What a reviewer's edit stores: Unicode NFC (as imported text is), and an edit that changes nothing is an approval."""

from __future__ import annotations

import unicodedata

import pytest

from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import Decision, ReviewDecision
from workbench.review.selectors import pairs_filtered
from workbench.review.services import ReviewInput, pair_claim, pair_review

pytestmark = pytest.mark.django_db


def test_decomposed_hangul_is_stored_composed_and_found_by_either_form(project, reviewer):
    (pair,) = make_pairs(project, 1)
    assert pair_claim(project=project, reviewer=reviewer).pk == pair.pk
    question, answer = "맥에서 붙여넣은 질문인가요?", "맥에서 붙여넣은 한국어 답변입니다."
    nfd = ReviewInput("edit", 1, question=unicodedata.normalize("NFD", question), answer=unicodedata.normalize("NFD", answer))
    assert nfd.answer != answer  # decomposed: other code points
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=nfd)
    stored = QAPair.objects.get(pk=pair.pk)
    assert (stored.question, stored.answer, stored.status) == (question, answer, PairStatus.EDITED)
    assert ReviewDecision.objects.get(pair=pair).answer_after == answer
    for query in ("한국어", unicodedata.normalize("NFD", "한국어")):
        assert list(pairs_filtered(project=project, params={"q": query})) == [stored], query


def test_an_edit_that_changes_nothing_is_recorded_as_an_approval(project, reviewer):
    (pair,) = make_pairs(project, 1)
    assert pair_claim(project=project, reviewer=reviewer).pk == pair.pk
    same = ReviewInput("edit", 1, question=pair.question + "\r\n", answer=" " + pair.answer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=same)
    stored = QAPair.objects.get(pk=pair.pk)
    assert (stored.status, stored.version, stored.question, stored.answer) == (
        PairStatus.APPROVED,
        2,
        pair.question,
        pair.answer,
    )
    assert list(ReviewDecision.objects.filter(pair=pair).values_list("decision", flat=True)) == [Decision.APPROVE]


def test_logging_out_gives_back_the_pairs_held_and_members_count_live_leases_only(client, project, reviewer):
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from tests.conftest import PASSWORD

    first, second, third = make_pairs(project, 3)
    client.login(username=reviewer.username, password=PASSWORD)
    assert pair_claim(project=project, reviewer=reviewer).pk == first.pk
    assert pair_claim(project=project, reviewer=reviewer, exclude=(first.pk,)).pk == second.pk  # the preloaded one
    QAPair.objects.filter(pk=third.pk).update(claimed_by=reviewer, lease_expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(project.memberships.get(role="admin").user)
    members = client.get(reverse("review:members", args=[project.slug])).context["rows"]
    assert {row["membership"].user_id: row["held"] for row in members}[reviewer.pk] == 2  # the lapsed lease not counted
    client.login(username=reviewer.username, password=PASSWORD)
    client.post(reverse("logout"))
    assert not QAPair.objects.filter(claimed_by=reviewer).exists()
    assert pair_claim(project=project, reviewer=reviewer).pk == first.pk  # free again, for anyone
