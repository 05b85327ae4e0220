"""Bulk rejection in the pair browser: the exact filtered set, a server-side confirmation of it, and an undo of the
whole action that is itself recorded."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.factories import make_pairs
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import BulkAction, Decision, ReviewDecision


def bulk_form_fields(html: str) -> list[tuple[str, str]]:
    form = re.search(r'<form[^>]*id="bulk-reject".*?</form>', html, re.S).group(0)
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form)
    return [(name, value) for name, value in fields if name != "csrfmiddlewaretoken"]


@pytest.mark.parametrize("term", ["one", "No", "e", "None", "N"])
def test_bulk_form_carries_the_search_it_was_shown_with(client, owner, project, term):
    make_pairs(project, 2, question=f"{term} 질문 {{i}}?")
    make_pairs(project, 3, question="다른 질문 {i}?", answer="답 {i}")
    client.login(username=owner.username, password=PASSWORD)
    response = client.get(reverse("review:pairs", args=[project.slug]), {"q": term, "status": "pending"})
    assert response.context["count"] == 2
    assert bulk_form_fields(response.content.decode()) == [("status", "pending"), ("q", term)]
    assert 'id="bulk-count">2<' in response.content.decode()


def test_a_filter_that_does_not_validate_offers_no_bulk_action(client, owner, project):
    make_pairs(project, 2)
    client.login(username=owner.username, password=PASSWORD)
    response = client.get(reverse("review:pairs", args=[project.slug]), {"q": "질문", "min_score": "many"})
    assert 'id="bulk-reject"' not in response.content.decode()


def test_a_score_range_without_a_flag_filters_on_any_flags_score(client, owner, project):
    """A score range with no flag chosen is applied to every flag's score (it was ignored: the whole project was
    listed and offered for bulk rejection); a range whose low end is above its high end is refused, listing nothing."""
    make_pairs(project, 6, flags_every=3)  # pairs 0 and 3 flagged echo at 0.9
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("review:pairs", args=[project.slug])
    listed = client.get(url, {"min_score": "0.85", "max_score": "1"})
    assert listed.context["count"] == 2 and 'id="bulk-count">2<' in listed.content.decode()
    assert client.get(url, {"min_score": "0.95"}).context["count"] == 0
    assert client.get(url, {"max_score": "0.5"}).context["count"] == 0
    reversed_range = client.get(url, {"min_score": "0.9", "max_score": "0.1"})
    page = reversed_range.content.decode()
    assert reversed_range.context["count"] == 0 and 'id="bulk-reject"' not in page
    assert "The lowest score (0.9) is above the highest (0.1)." in page
    # Bulk rejection from the same filter takes the same set.
    selection = client.post(
        reverse("review:bulk_reject", args=[project.slug]), {"min_score": "0.85", "reason": "점수로 거절"}
    ).context["selection"]
    assert selection.count == 2


def test_a_filtered_set_with_nothing_pending_offers_no_bulk_action(client, owner, project):
    (pair,) = make_pairs(project, 1)
    QAPair.objects.filter(pk=pair.pk).update(status=PairStatus.APPROVED)
    client.login(username=owner.username, password=PASSWORD)
    response = client.get(reverse("review:pairs", args=[project.slug]))
    assert response.context["count"] == 1 and 'id="bulk-reject"' not in response.content.decode()


def confirm_step(client, project, data):
    response = client.post(reverse("review:bulk_reject", args=[project.slug]), data)
    assert response.status_code == 200
    return response


def test_bulk_reject_asks_to_confirm_the_exact_set_and_refuses_a_changed_one(client, owner, reviewer, project):
    targets = make_pairs(project, 3, question="발효 질문 {i}?")
    make_pairs(project, 2, question="다른 질문 {i}?")
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("review:bulk_reject", args=[project.slug])
    data = {"q": "발효", "reason": "출처와 무관"}

    first = confirm_step(client, project, data)  # no confirmation yet: nothing changes
    assert not QAPair.objects.filter(status=PairStatus.REJECTED).exists()
    selection = first.context["selection"]
    assert selection.ids == tuple(p.pk for p in targets)
    assert 'id="confirm-count">3<' in first.content.decode()

    # Meanwhile a reviewer approves one of them and a new matching pair arrives: the confirmed set is not the set now.
    QAPair.objects.filter(pk=targets[0].pk).update(status=PairStatus.APPROVED, version=2)
    (late,) = make_pairs(project, 1, question="늦게 온 발효 질문?")
    stale = client.post(url, data | {"confirm": "1", "count": selection.count, "digest": selection.digest})
    assert stale.status_code == 409
    assert "now holds 3 pending pairs" in stale.content.decode()
    assert not QAPair.objects.filter(status=PairStatus.REJECTED).exists() and not BulkAction.objects.exists()
    # The same count is not enough: the digest names the set.
    assert client.post(url, data | {"confirm": "1", "count": 3, "digest": selection.digest}).status_code == 409
    assert client.post(url, data | {"confirm": "1", "count": 3}).status_code == 400
    assert not QAPair.objects.filter(status=PairStatus.REJECTED).exists()

    fresh = stale.context["selection"]
    done = client.post(url, data | {"confirm": "1", "count": fresh.count, "digest": fresh.digest})
    assert done.status_code == 302
    rejected = set(QAPair.objects.filter(status=PairStatus.REJECTED).values_list("pk", flat=True))
    assert rejected == {targets[1].pk, targets[2].pk, late.pk}
    action = BulkAction.objects.get()
    assert (action.pair_count, action.reason, action.filters, action.created_by) == (3, "출처와 무관", {"q": "발효"}, owner)
    assert set(action.decisions.values_list("pair_id", "decision", "is_bulk")) == {(pk, "reject", True) for pk in rejected}


def test_undo_reverts_the_unchanged_pairs_as_one_step_and_reports_the_rest(client, owner, reviewer, project):
    pairs = make_pairs(project, 4, question="중복 질문 {i}?")
    client.login(username=owner.username, password=PASSWORD)
    url = reverse("review:bulk_reject", args=[project.slug])
    selection = confirm_step(client, project, {"reason": "중복"}).context["selection"]
    client.post(url, {"reason": "중복", "confirm": "1", "count": selection.count, "digest": selection.digest})
    action = BulkAction.objects.get()
    assert QAPair.objects.filter(status=PairStatus.REJECTED).count() == 4
    # After the bulk action a reviewer changed one of the pairs: it must not be undone over their decision.
    changed = QAPair.objects.get(pk=pairs[2].pk)
    ReviewDecision.objects.create(
        pair=changed,
        reviewer=reviewer,
        decision=Decision.EDIT,
        question_before=changed.question,
        answer_before=changed.answer,
        question_after="고친 질문?",
        answer_after=changed.answer,
        status_before=changed.status,
        status_after=PairStatus.EDITED,
        version_before=changed.version,
    )
    QAPair.objects.filter(pk=changed.pk).update(status=PairStatus.EDITED, question="고친 질문?", version=changed.version + 1)

    response = client.post(reverse("review:bulk_undo", args=[project.slug, action.pk]), follow=True)
    body = response.content.decode()
    assert "Undid bulk action" in body and "3 pairs back" in body
    assert f"pair {changed.pk}: reviewer made it edit and approve since" in body
    for pair in (pairs[0], pairs[1], pairs[3]):
        pair.refresh_from_db()
        assert (pair.status, pair.version, pair.claimed_by) == (PairStatus.PENDING, 3, None)
        # History is kept: the bulk rejection and its undo, both linked to the action.
        assert list(pair.decisions.order_by("id").values_list("decision", "status_before", "status_after", "bulk_action")) == [
            ("reject", "pending", "rejected", action.pk),
            ("undo", "rejected", "pending", action.pk),
        ]
    changed.refresh_from_db()
    assert (changed.status, changed.question) == (PairStatus.EDITED, "고친 질문?")
    action.refresh_from_db()
    assert action.undone_by == owner and action.undo_report["reverted"] == 3
    assert [k["pair"] for k in action.undo_report["not_reverted"]] == [changed.pk]

    # Once only: a second undo changes nothing and says so.
    again = client.post(reverse("review:bulk_undo", args=[project.slug, action.pk]), follow=True)
    assert "already undone" in again.content.decode()
    assert ReviewDecision.objects.filter(decision=Decision.UNDO).count() == 3
    assert f"Undone by {owner.username}" in again.content.decode()


def test_only_admins_confirm_or_undo_bulk_actions(client, owner, reviewer, outsider, project):
    make_pairs(project, 2)
    client.login(username=owner.username, password=PASSWORD)
    selection = confirm_step(client, project, {"reason": "x"}).context["selection"]
    client.post(
        reverse("review:bulk_reject", args=[project.slug]),
        {"reason": "x", "confirm": "1", "count": selection.count, "digest": selection.digest},
    )
    action = BulkAction.objects.get()
    undo = reverse("review:bulk_undo", args=[project.slug, action.pk])
    for user, status in ((reviewer, 403), (outsider, 404)):
        client.login(username=user.username, password=PASSWORD)
        assert client.post(undo).status_code == status
        assert client.post(reverse("review:bulk_reject", args=[project.slug]), {"reason": "x"}).status_code == status
    action.refresh_from_db()
    assert action.undone_at is None and QAPair.objects.filter(status=PairStatus.REJECTED).count() == 2
