"""One pair's own page for admins: opened from the pair browser, with its versions, flags and provenance, and the
admin's reject and reopen; the browser filters by document title and reviewer name."""

from __future__ import annotations

import pytest

from tests.browser import chromium_page, log_in
from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewConflict, ReviewInput, pair_admin_decide, pair_claim, pair_review

HOSTILE = '<img src=x onerror="window.pwned=1">'


def pair_url(project, pair):
    return f"/p/{project.slug}/pairs/{pair.pk}/"


def test_reviewers_get_403_and_the_version_guards_admin_actions(client, project, owner, reviewer):
    (pair,) = make_pairs(project, 1)
    client.login(username="reviewer", password=PASSWORD)
    refused = client.get(pair_url(project, pair))
    assert refused.status_code == 403
    assert 'id="forbidden"' in refused.content.decode() and "Only project admins can do this." in refused.content.decode()
    client.logout()
    client.login(username="owner", password=PASSWORD)
    assert client.post(pair_url(project, pair), {"action": "reject", "version": "1", "reason": ""}).status_code == 400
    assert client.post(pair_url(project, pair), {"action": "reject", "version": str(2**40), "reason": "x"}).status_code == 400
    assert client.post(pair_url(project, pair), {"action": "delete", "version": "1"}).status_code == 400
    # The reviewer decided meanwhile: the admin's stale action is a conflict, not an overwrite.
    claimed = pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=1))
    response = client.post(pair_url(project, pair), {"action": "reject", "version": "1", "reason": "off"})
    assert response.status_code == 409 and "changed since you opened it" in response.content.decode()
    assert QAPair.objects.get(pk=pair.pk).status == PairStatus.APPROVED


def test_reject_then_reopen_is_history_and_the_holder_meets_a_conflict(project, owner, reviewer):
    (pair,) = make_pairs(project, 1)
    held = pair_claim(project=project, reviewer=reviewer)
    pair_admin_decide(pair_id=pair.pk, admin=owner, action="reject", version=1, reason="사실과 다름")
    with pytest.raises(ReviewConflict):
        pair_review(pair_id=held.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=1))
    pair_admin_decide(pair_id=pair.pk, admin=owner, action="reopen", version=2)
    pair = QAPair.objects.get(pk=pair.pk)
    assert pair.status == PairStatus.PENDING and pair.version == 3 and pair.claimed_by is None
    assert list(ReviewDecision.objects.filter(pair=pair).order_by("id").values_list("decision", "status_after")) == [
        ("reject", "rejected"),
        ("reopen", "pending"),
    ]


def test_browser_filters_by_document_title_and_reviewer_name(client, project, owner, reviewer):
    mine = make_pairs(project, 2)
    other = make_pairs(project, 2)
    other[0].chunk.document.title = "국회법 일부개정법률안"
    other[0].chunk.document.save()
    claimed = pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=claimed.version))
    client.login(username="owner", password=PASSWORD)
    page = client.get(f"/p/{project.slug}/pairs/", {"document": "국회법"}).content.decode()
    assert f'data-pair="{other[0].pk}"' in page and f'data-pair="{mine[0].pk}"' not in page
    page = client.get(f"/p/{project.slug}/pairs/", {"reviewer": "REVIEWER"}).content.decode()
    assert page.count("data-pair=") == 1 and f'data-pair="{claimed.pk}"' in page
    # Part of the username finds them too (usernames are often e-mail addresses); another's decisions are not listed.
    assert client.get(f"/p/{project.slug}/pairs/", {"reviewer": "view"}).context["count"] == 1
    assert client.get(f"/p/{project.slug}/pairs/", {"reviewer": "own"}).context["count"] == 0


@pytest.mark.django_db(transaction=True)
def test_admin_opens_a_pair_from_the_browser_and_rejects_then_reopens_it(live_server, project, owner, reviewer):
    pairs = make_pairs(project, 3, question="질문 {i} " + HOSTILE, flags_every=3, with_generation=True)
    claimed = pair_claim(project=project, reviewer=reviewer)
    pair_review(
        pair_id=claimed.pk,
        reviewer=reviewer,
        data=ReviewInput(
            decision="edit", version=claimed.version, question="고친 질문입니까?", answer=claimed.answer, confirm=True
        ),
    )
    with chromium_page() as page:
        log_in(page, live_server.url, "owner")
        page.goto(live_server.url + f"/p/{project.slug}/pairs/")
        page.click(f"tr[data-pair='{pairs[0].pk}'] a.pair-link")
        page.wait_for_selector("#pair-page")
        assert "echo" in page.inner_text("#flags") and "The question copies the source." in page.inner_text("#flags")
        assert "고친 질문입니까?" in page.inner_text("#pair-question")
        assert HOSTILE in page.inner_text("#history") and page.evaluate("window.pwned") is None
        assert "reviewer" in page.inner_text("#history") and "Edit and approve" in page.inner_text("#history")
        assert f"Run {pairs[0].generation.run_id}" in page.inner_text("#provenance")
        assert "[[Q]]" in page.inner_text("#raw-output")
        page.fill("#id_reason", "출처와 다른 사실")
        page.click("#reject-form button")
        page.wait_for_selector("#history tr[data-decision=reject]")
        assert "Rejected" in page.inner_text("#pair-title") and "출처와 다른 사실" in page.inner_text("#history")
        page.click("#reopen-form button")
        page.wait_for_selector("#history tr[data-decision=reopen]")
        assert "Pending review" in page.inner_text("#pair-title")
    assert QAPair.objects.get(pk=pairs[0].pk).status == PairStatus.PENDING


def test_an_admins_decision_stands_against_a_reviewer_who_saw_it(project, owner, reviewer, django_user_model):
    """After the conflict the reviewer sees the admin's rejection; sending their text again at that version is another
    conflict, not an overwrite. Another reviewer's decision they may still decide again (re-applying their text), and
    an admin may change anyone's."""
    from workbench.projects.models import Membership, Role

    _, second = make_pairs(project, 2)
    held = pair_claim(project=project, reviewer=reviewer)
    pair_admin_decide(pair_id=held.pk, admin=owner, action="reject", version=1, reason="사실과 다름")
    with pytest.raises(ReviewConflict, match="changed since you opened it"):
        pair_review(pair_id=held.pk, reviewer=reviewer, data=ReviewInput(decision="approve", version=1))
    edit = ReviewInput(decision="edit", version=2, question="고친 질문입니까?", answer="고친 답입니다.", confirm=True)
    with pytest.raises(ReviewConflict, match="only an admin can change"):
        pair_review(pair_id=held.pk, reviewer=reviewer, data=edit)
    pair = QAPair.objects.get(pk=held.pk)
    assert (pair.status, pair.version, pair.question) == (PairStatus.REJECTED, 2, held.question)
    # Another reviewer's decision: decided again by the one who saw it.
    other = django_user_model.objects.create_user("other", password=PASSWORD)
    Membership.objects.create(project=project, user=other, role=Role.REVIEWER)
    taken = pair_claim(project=project, reviewer=other)
    assert taken.pk == second.pk
    pair_review(pair_id=taken.pk, reviewer=other, data=ReviewInput(decision="approve", version=1))
    redone = pair_review(pair_id=taken.pk, reviewer=reviewer, data=ReviewInput(decision="reject", version=2, reason="x"))
    assert (redone.status, redone.version) == (PairStatus.REJECTED, 3)
    # An admin changes the admin's own decision and the reviewer's alike.
    assert pair_review(pair_id=held.pk, reviewer=owner, data=edit).status == PairStatus.EDITED
    again = ReviewInput(decision="approve", version=3)
    assert pair_review(pair_id=taken.pk, reviewer=owner, data=again).status == PairStatus.APPROVED


def test_the_conflict_page_offers_no_re_apply_over_an_admins_decision(client, project, owner, reviewer):
    from django.urls import reverse

    pair_one, _ = make_pairs(project, 2)
    client.login(username="reviewer", password=PASSWORD)
    url = reverse("review:decide", args=[project.slug, pair_one.pk])
    held = pair_claim(project=project, reviewer=reviewer)
    assert held.pk == pair_one.pk
    pair_admin_decide(pair_id=pair_one.pk, admin=owner, action="reject", version=1, reason="사실과 다름")
    sent = {"decision": "edit", "version": "1", "question": "내 질문 <b>굵게</b>?", "answer": "내 답입니다."}
    response = client.post(url, sent)
    page = response.content.decode()
    assert response.status_code == 409 and 'id="conflict-yours"' in page
    assert 'id="btn-reapply"' not in page and 'id="admin-decided"' in page
    assert "내 질문 &lt;b&gt;굵게&lt;/b&gt;?" in page
    # Sent again at the version the page showed: still refused, the admin's rejection stands.
    response = client.post(url, {**sent, "version": "2"})
    assert response.status_code == 409 and "only an admin can change" in response.content.decode()
    assert QAPair.objects.get(pk=pair_one.pk).status == PairStatus.REJECTED


def test_flags_of_an_edited_pair_are_said_to_be_the_models_and_mark_the_models_text(client, project, owner, reviewer):
    """The flags describe the model's output. Once a reviewer edits the pair, the page says so, marks the missing facts
    in the model's answer under the flag, and leaves the text now unmarked (the offsets point into the model's text)."""
    from workbench.quality.models import PairFlag

    (pair,) = make_pairs(project, 1, question="임기는 몇 년인가?", answer="대통령의 임기는 7년이다.")
    at = pair.answer.index("7년")
    PairFlag.objects.create(
        pair=pair,
        name="unsupported",
        severity="warning",
        score=0.5,
        reason="Not in the source: 7년",
        details={"missing": [{"text": "7년", "start": at, "end": at + 2}]},
    )
    client.login(username="owner", password=PASSWORD)
    page = client.get(pair_url(project, pair)).content.decode()
    assert 'id="flags-on-original"' not in page and "<mark>7년</mark>" in page
    claimed = pair_claim(project=project, reviewer=reviewer)
    edit = ReviewInput(decision="edit", version=1, question="임기는 몇 년인가?", answer="임기는 5년이며 중임할 수 없다.")
    pair_review(pair_id=claimed.pk, reviewer=reviewer, data=ReviewInput(**{**edit.__dict__, "confirm": True}))
    page = client.get(pair_url(project, pair)).content.decode()
    assert 'id="flags-on-original"' in page
    assert '<div class="unsupported-answer">대통령의 임기는 <mark>7년</mark>이다.</div>' in page
    answer_now = page.split('id="pair-answer">', 1)[1].split("</dd>", 1)[0]
    assert answer_now == "임기는 5년이며 중임할 수 없다." and "<mark>" not in answer_now
