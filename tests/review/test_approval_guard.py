"""What an approval may take: never an empty question or answer, a reject-level flag only when the reviewer confirms
(or edited the text)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from tests.review.test_api import token_client
from workbench.generation.models import PairStatus, QAPair
from workbench.quality.models import PairFlag
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewInput, pair_claim, pair_review

pytestmark = pytest.mark.usefixtures("review_path")  # both paths: PostgreSQL's single statements and the ORM's


def malformed_pair(project, question="", answer=""):
    (pair,) = make_pairs(project, 1, question=question, answer=answer)
    PairFlag.objects.create(pair=pair, name="malformed", severity="reject", score=1.0, reason="No [[Q]] or [[A]] found.")
    QAPair.objects.filter(pk=pair.pk).update(flags=["malformed"], is_flagged=True)
    return QAPair.objects.get(pk=pair.pk)


def test_an_empty_pair_is_never_approved_even_confirmed(project, reviewer):
    pair = malformed_pair(project)
    pair_claim(project=project, reviewer=reviewer)
    for confirm in (False, True):
        with pytest.raises(ValidationError) as info:
            pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", 1, confirm=confirm))
        assert "cannot be approved" in info.value.message_dict["question"][0]
        assert "cannot be approved" in info.value.message_dict["answer"][0]
    stored = QAPair.objects.get(pk=pair.pk)
    assert (stored.status, stored.version, stored.claimed_by_id) == (PairStatus.PENDING, 1, reviewer.pk)
    assert not ReviewDecision.objects.filter(pair=pair).exists()


@pytest.mark.parametrize(
    "question,answer",
    [
        (" \n\t", "답입니다."),
        ("질문입니까?", "\u3000\u00a0"),
        ("질문입니까?", "\u200b"),  # a zero-width space: shows nothing
        ("\u3164 \u115f", "답입니다."),  # Hangul fillers
        ("질문입니까?", "\ufeff\u200d\u2060\u00ad \u200e"),  # BOM, joiners, soft hyphen, a bidi mark
    ],
)
def test_a_whitespace_only_side_is_never_approved(project, reviewer, question, answer):
    (pair,) = make_pairs(project, 1, question=question, answer=answer)
    pair_claim(project=project, reviewer=reviewer)
    with pytest.raises(ValidationError, match="cannot be approved"):
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", 1))
    with pytest.raises(ValidationError, match="needs a"):
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question=question, answer=answer))
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.PENDING
    # Rejecting it is the way out.
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("reject", 1, reason="Not Korean / broken formatting"))
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.REJECTED


def test_a_reject_level_flag_needs_a_confirmation(project, reviewer):
    pair = malformed_pair(project, question="질문입니까?", answer="답입니다.")
    pair_claim(project=project, reviewer=reviewer)
    with pytest.raises(ValidationError) as info:
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", 1))
    assert "reject-level flags (malformed)" in info.value.message_dict["confirm"][0]
    # An "edit" that leaves the text as it was is an approval too.
    with pytest.raises(ValidationError, match="reject-level"):
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question="질문입니까?", answer="답입니다."))
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.PENDING
    approved = pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", 1, confirm=True))
    assert (approved.status, approved.version) == (PairStatus.APPROVED, 2)


def test_an_edit_that_changes_the_text_needs_no_confirmation(project, reviewer):
    pair = malformed_pair(project)
    pair_claim(project=project, reviewer=reviewer)
    edited = pair_review(
        pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question="고친 질문?", answer="고친 답.")
    )
    assert (edited.status, edited.question, edited.answer) == (PairStatus.EDITED, "고친 질문?", "고친 답.")


def test_a_warning_flag_needs_no_confirmation(project, reviewer):
    (pair,) = make_pairs(project, 1)
    PairFlag.objects.create(pair=pair, name="truncated", severity="warning", score=0.6, reason="Ends mid-sentence.")
    pair_claim(project=project, reviewer=reviewer)
    assert pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", 1)).status == PairStatus.APPROVED


def test_api_asks_for_the_confirmation_and_refuses_empty_pairs(project, reviewer):
    api = token_client(reviewer)
    empty = malformed_pair(project)
    flagged = malformed_pair(project, question="질문입니까?", answer="답입니다.")
    claimed = {api.post(f"/api/projects/{project.slug}/queue/claim").json()["id"] for _ in range(2)}
    QAPair.objects.filter(pk__in=[empty.pk, flagged.pk]).update(claimed_by=reviewer)
    assert claimed <= {empty.pk, flagged.pk}
    refused = api.post(f"/api/pairs/{flagged.pk}/review", {"decision": "approve", "version": 1}, format="json")
    assert refused.status_code == 400 and "reject-level" in refused.json()["confirm"][0]
    done = api.post(f"/api/pairs/{flagged.pk}/review", {"decision": "approve", "version": 1, "confirm": True}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "approved"
    empty_refused = api.post(
        f"/api/pairs/{empty.pk}/review", {"decision": "approve", "version": 1, "confirm": True}, format="json"
    )
    assert empty_refused.status_code == 400 and set(empty_refused.json()) == {"question", "answer"}
    assert QAPair.objects.get(pk=empty.pk).status == PairStatus.PENDING


def test_the_form_asks_for_the_confirmation(client, project, reviewer):
    pair = malformed_pair(project, question="질문입니까?", answer="답입니다.")
    client.login(username=reviewer.username, password=PASSWORD)
    client.get(reverse("review:queue", args=[project.slug]))
    url = reverse("review:decide", args=[project.slug, pair.pk])
    asked = client.post(url, {"decision": "approve", "version": 1})
    assert asked.status_code == 400
    page = asked.content.decode()
    assert 'id="confirm-approve"' in page and 'id="confirm-approve" role="alert" hidden' not in page
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.PENDING
    assert client.post(url, {"decision": "approve", "version": 1, "confirm": "1"}).status_code == 302
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.APPROVED


def test_the_invisible_characters_scanned_at_import_are_those_of_every_code_point():
    import sys

    from workbench.review import blank

    assert blank.INVISIBLE == blank._invisible(range(1, sys.maxunicode + 1))


def test_an_edit_that_keeps_a_broken_character_needs_a_confirmation(project, reviewer):
    """U+FFFD is what a broken decoding leaves (the malformed flag's); an edit is where a reviewer fixes it."""
    (pair,) = make_pairs(project, 1, answer="답의 일부가 깨졌습니다 \ufffd\ufffd.")
    held = pair_claim(project=project, reviewer=reviewer)
    kept = ReviewInput(decision="edit", version=1, question="고친 질문입니까?", answer=held.answer)
    with pytest.raises(ValidationError) as refused:
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=kept)
    assert "U+FFFD" in refused.value.message_dict["confirm"][0]
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.PENDING
    fixed = ReviewInput(decision="edit", version=1, question="고친 질문입니까?", answer="답을 고쳤습니다.")
    assert pair_review(pair_id=pair.pk, reviewer=reviewer, data=fixed).status == PairStatus.EDITED
