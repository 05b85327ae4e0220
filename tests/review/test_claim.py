"""Claiming and deciding on PostgreSQL under concurrency, by the single statements and by the ORM path: no pair to two
reviewers, no lost update, no double record."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import make_pairs, make_project, make_user
from workbench.generation.models import PairStatus, QAPair
from workbench.review.models import ReviewDecision
from workbench.review.services import ReviewConflict, ReviewInput, pair_claim, pair_review, review_undo

pytestmark = pytest.mark.usefixtures("review_path")  # both paths: PostgreSQL's single statements and the ORM's


def approve(pair, reviewer, version=None):
    return pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("approve", version or pair.version))


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_claim_a_thousand_distinct_pairs():
    owner = make_user("owner")
    reviewers = [make_user(f"r{i}") for i in range(50)]
    project = make_project(admins=[owner], reviewers=reviewers)
    make_pairs(project, 1000)
    claimed: list[list[int]] = [[] for _ in reviewers]
    errors = []
    barrier = threading.Barrier(len(reviewers))

    def work(index, reviewer):
        try:
            barrier.wait()
            while (pair := pair_claim(project=project, reviewer=reviewer)) is not None:
                claimed[index].append(pair.pk)
                approve(pair, reviewer)
        except Exception as exc:  # surfaced below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, r)) for i, r in enumerate(reviewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [pk for ids in claimed for pk in ids]
    assert len(everything) == 1000 and len(set(everything)) == 1000
    assert QAPair.objects.filter(project=project, status=PairStatus.APPROVED).count() == 1000
    assert ReviewDecision.objects.count() == 1000
    assert sum(1 for ids in claimed if ids) > 10  # the work really was spread


def test_reload_returns_the_held_pair(project, reviewer):
    make_pairs(project, 3)
    first = pair_claim(project=project, reviewer=reviewer)
    assert pair_claim(project=project, reviewer=reviewer).pk == first.pk


def test_lapsed_lease_returns_the_pair_to_the_queue(project, reviewer, owner):
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    assert pair_claim(project=project, reviewer=owner) is None
    QAPair.objects.filter(pk=pair.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert pair_claim(project=project, reviewer=owner).pk == pair.pk
    with pytest.raises(ReviewConflict, match="owner is reviewing this pair now"):
        approve(pair, reviewer)
    approve(QAPair.objects.get(pk=pair.pk), owner)


def test_stale_version_is_a_conflict_not_an_overwrite(project, reviewer):
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question="고친 질문?", answer="고친 답."))
    QAPair.objects.filter(pk=pair.pk).update(claimed_by=reviewer, lease_expires_at=timezone.now() + timedelta(minutes=5))
    with pytest.raises(ReviewConflict, match="changed since you opened it") as info:
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question="다른 질문?", answer="다른 답."))
    assert info.value.pair.question == "고친 질문?"
    assert QAPair.objects.get(pk=pair.pk).question == "고친 질문?"


def test_double_submitted_decision_records_once(project, reviewer):
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    data = ReviewInput("edit", 1, question="새 질문?", answer="새 답.")
    first = pair_review(pair_id=pair.pk, reviewer=reviewer, data=data)
    again = pair_review(pair_id=pair.pk, reviewer=reviewer, data=data)
    assert first.version == again.version == 2
    assert ReviewDecision.objects.filter(pair=pair).count() == 1


def test_the_same_rejection_with_another_reason_is_a_conflict_not_dropped(project, reviewer):
    """A second rejection at the same version with another reason is not a replay of the first: the reviewer is told
    the pair changed (and sees it rejected with the first reason) instead of getting a 200 that kept nothing."""
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("reject", 1, reason="bad"))
    assert pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("reject", 1, reason="bad")).version == 2
    with pytest.raises(ReviewConflict, match="changed since you opened it"):
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("reject", 1, reason="other"))
    assert list(ReviewDecision.objects.filter(pair=pair).values_list("reason", flat=True)) == ["bad"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_records_once():
    owner = make_user("owner")
    reviewer = make_user("rev")
    project = make_project(admins=[owner], reviewers=[reviewer])
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    results, barrier = [], threading.Barrier(8)

    def submit():
        barrier.wait()
        try:
            results.append(approve(QAPair.objects.get(pk=pair.pk), reviewer, version=1).version)
        except ReviewConflict as exc:
            results.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2] * 8
    assert ReviewDecision.objects.filter(pair=pair).count() == 1


def test_decisions_are_history(project, reviewer):
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("reject", 1, reason="Echoes the source instead of asking"))
    decision = ReviewDecision.objects.get(pair=pair)
    assert (decision.reviewer, decision.decision, decision.status_before, decision.status_after) == (
        reviewer,
        "reject",
        "pending",
        "rejected",
    )
    assert decision.reason == "Echoes the source instead of asking" and decision.question_before == pair.question


def test_reject_needs_a_reason_and_edit_needs_text(project, reviewer):
    from django.core.exceptions import ValidationError

    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    with pytest.raises(ValidationError) as info:
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("reject", 1))
    assert "reason" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question=" ", answer="답"))
    assert "question" in info.value.message_dict


def test_undo_restores_the_pair_and_returns_it(project, reviewer):
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("edit", 1, question="고침?", answer="고침."))
    restored = review_undo(project=project, reviewer=reviewer)
    assert (restored.question, restored.status, restored.version) == (pair.question, "pending", 3)
    assert pair_claim(project=project, reviewer=reviewer).pk == pair.pk
    assert list(ReviewDecision.objects.filter(pair=pair).order_by("id").values_list("decision", flat=True)) == ["edit", "undo"]


def test_skip_releases_without_a_decision_on_the_pair(project, reviewer, owner):
    (pair,) = make_pairs(project, 1)
    pair_claim(project=project, reviewer=reviewer)
    pair_review(pair_id=pair.pk, reviewer=reviewer, data=ReviewInput("skip", 1))
    pair.refresh_from_db()
    assert (pair.status, pair.version, pair.claimed_by) == ("pending", 1, None)
    assert pair_claim(project=project, reviewer=owner).pk == pair.pk


@pytest.mark.parametrize("order,first_flagged", [("flagged_first", True), ("clean_first", False)])
def test_queue_order_and_flag_filter(project, reviewer, order, first_flagged):
    project.queue_order = order
    project.save()
    make_pairs(project, 6, flags_every=3)
    assert pair_claim(project=project, reviewer=reviewer).is_flagged is first_flagged
    QAPair.objects.update(claimed_by=None, lease_expires_at=None)
    assert pair_claim(project=project, reviewer=reviewer, flag="echo").flags == ["echo"]
