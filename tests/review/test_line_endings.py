"""Line endings of every text the review forms and the API take: CRLF and lone CR are stored as LF."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from tests.review.test_api import token_client
from workbench.generation.models import QAPair
from workbench.review.models import AuditItem, ReviewDecision
from workbench.review.services import ReviewInput, pair_claim, pair_review


def test_line_endings_of_edits_and_reasons_are_normalised(client, project, reviewer):
    pairs = make_pairs(project, 3)
    client.login(username=reviewer.username, password=PASSWORD)
    client.get(reverse("review:queue", args=[project.slug]))
    client.post(
        reverse("review:decide", args=[project.slug, pairs[0].pk]),
        {"decision": "edit", "version": 1, "question": "첫 줄\r\n둘째 줄?", "answer": "답\r셋째\r\n넷째."},
    )
    assert QAPair.objects.filter(pk=pairs[0].pk).values_list("question", "answer").get() == ("첫 줄\n둘째 줄?", "답\n셋째\n넷째.")
    client.get(reverse("review:queue", args=[project.slug]))
    client.post(
        reverse("review:decide", args=[project.slug, pairs[1].pk]),
        {"decision": "reject", "version": 1, "reason_preset": "Duplicate of another question", "reason": "a\r\nb\rc"},
    )
    assert ReviewDecision.objects.get(pair=pairs[1]).reason == "Duplicate of another question: a\nb\nc"

    api = token_client(reviewer)
    claimed = api.post(f"/api/projects/{project.slug}/queue/claim").json()
    assert claimed["id"] == pairs[2].pk
    body = api.post(
        f"/api/pairs/{claimed['id']}/review",
        {"decision": "edit", "version": 1, "question": "질문\r\n이어서?", "answer": "답\r\r끝.", "reason": "고침\r\n"},
        format="json",
    ).json()
    assert (body["question"], body["answer"]) == ("질문\n이어서?", "답\n\n끝.")
    decision = ReviewDecision.objects.get(pair=pairs[2])
    assert (decision.question_after, decision.answer_after) == ("질문\n이어서?", "답\n\n끝.")
    # The same edit sent again with CRLF is the same edit: recorded once.
    again = api.post(
        f"/api/pairs/{claimed['id']}/review",
        {"decision": "edit", "version": 1, "question": "질문\n이어서?", "answer": "답\r\n\r\n끝."},
        format="json",
    )
    assert again.status_code == 200 and ReviewDecision.objects.filter(pair=pairs[2]).count() == 1


def test_audit_notes_are_normalised(project, reviewer, owner):
    from workbench.review.audit import audit_claim, audit_create, audit_verdict

    (pair,) = make_pairs(project, 1)
    claimed = pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput("approve", claimed.version))
    audit_create(project=project, admin=owner, sample_size=1)
    item = audit_claim(project=project, auditor=owner)
    audit_verdict(item_id=item.pk, auditor=owner, verdict="disagree", note="틀림\r\n근거 없음\r")
    assert AuditItem.objects.get(pk=item.pk).note == "틀림\n근거 없음"
